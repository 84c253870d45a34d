// ReadSafetensors: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {...}}
// then the data; offsets are relative to the first byte after the header.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/little_endian.h"
#include "engine/util/absl_compat.h"
#include "engine/util/mapped_file.h"
#include "engine/util/status_macros.h"
#include "nlohmann/json.hpp"

namespace supra {
namespace {

// The limit the safetensors specification sets for the header.
constexpr uint64_t kMaxHeaderSize = 100'000'000;

bool ParseDType(std::string_view name, DType& dtype) {
  if (name == "F32") {
    dtype = DType::kF32;
  } else if (name == "BF16") {
    dtype = DType::kBF16;
  } else if (name == "F16") {
    dtype = DType::kF16;
  } else if (name == "F64") {
    dtype = DType::kF64;
  } else if (name == "I32") {
    dtype = DType::kI32;
  } else if (name == "I64") {
    dtype = DType::kI64;
  } else {
    return false;
  }
  return true;
}

// Reads a JSON array of non-negative integers.
bool ReadUints(const nlohmann::json& value, std::vector<uint64_t>& out) {
  if (!value.is_array()) return false;
  out.clear();
  for (const nlohmann::json& item : value) {
    if (!item.is_number_unsigned()) return false;
    out.push_back(item.get<uint64_t>());
  }
  return true;
}

class SafetensorsParser {
 public:
  SafetensorsParser(const MappedFile& file, std::span<const std::byte> data) : file_(file), data_(data) {}

  absl::StatusOr<TensorView> Tensor(const std::string& name, const nlohmann::json& info) const {
    if (!info.is_object()) return Corrupt(name, "entry is not a JSON object");
    const auto dtype_it = info.find("dtype");
    const auto shape_it = info.find("shape");
    const auto offsets_it = info.find("data_offsets");
    if (dtype_it == info.end() || !dtype_it->is_string()) return Corrupt(name, "missing or non-string \"dtype\"");
    TensorView view;
    const std::string& dtype_name = dtype_it->get_ref<const std::string&>();
    if (!ParseDType(dtype_name, view.dtype)) {
      return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": tensor '", name, "': unsupported dtype '",
                                                     dtype_name.substr(0, 32),
                                                     "' (supported: F32, BF16, F16, F64, I32, I64)"));
    }
    std::vector<uint64_t> shape;
    if (shape_it == info.end() || !ReadUints(*shape_it, shape)) {
      return Corrupt(name, "\"shape\" must be an array of non-negative integers");
    }
    std::vector<uint64_t> offsets;
    if (offsets_it == info.end() || !ReadUints(*offsets_it, offsets) || offsets.size() != 2) {
      return Corrupt(name, "\"data_offsets\" must be two non-negative integers");
    }
    uint64_t numel = 1;
    for (uint64_t d : shape) {
      if (d > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(numel, d, &numel)) {
        return Corrupt(name, "element count overflows");
      }
    }
    const uint64_t begin = offsets[0];
    const uint64_t end = offsets[1];
    if (begin > end || end > data_.size()) {
      return Corrupt(
          name, absl::StrCat("data_offsets [", begin, ", ", end, ") lie outside the ", data_.size(), " bytes of data"));
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(numel, DTypeSize(view.dtype), &nbytes) || nbytes != end - begin) {
      return Corrupt(name, absl::StrCat("data_offsets span ", end - begin, " bytes, but the shape needs ", numel,
                                        " elements of ", ToAbsl(DTypeName(view.dtype))));
    }
    view.shape.assign(shape.begin(), shape.end());
    view.data = data_.data() + begin;
    view.nbytes = static_cast<size_t>(nbytes);
    view.source = file_.path();
    return view;
  }

 private:
  absl::Status Corrupt(const std::string& name, std::string_view problem) const {
    return absl::DataLossError(absl::StrCat(file_.path(), ": tensor '", name, "': ", ToAbsl(problem)));
  }

  const MappedFile& file_;
  std::span<const std::byte> data_;
};

}  // namespace

absl::StatusOr<Checkpoint> ReadSafetensors(const std::string& path) {
  ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::Open(path));
  if (file->size() < 8) {
    return absl::DataLossError(absl::StrCat(path, ": too small to be a safetensors file (", file->size(), " bytes)"));
  }
  const uint64_t header_size = LoadLe64(file->data());
  if (header_size > kMaxHeaderSize || header_size > file->size() - 8) {
    return absl::DataLossError(absl::StrCat(path, ": header length ", header_size, " exceeds ",
                                            header_size > kMaxHeaderSize ? "the 100 MB limit" : "the file",
                                            " (file is ", file->size(), " bytes)"));
  }
  const char* header_begin = reinterpret_cast<const char*>(file->data() + 8);
  const nlohmann::json header =
      nlohmann::json::parse(header_begin, header_begin + header_size, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return absl::DataLossError(absl::StrCat(path, ": header is not valid JSON"));
  if (!header.is_object()) return absl::DataLossError(absl::StrCat(path, ": header is not a JSON object"));

  const SafetensorsParser parser(*file, file->bytes().subspan(8 + header_size));
  Checkpoint checkpoint;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    ASSIGN_OR_RETURN(TensorView view, parser.Tensor(name, info));
    RETURN_IF_ERROR(checkpoint.Add(name, std::move(view)));
  }
  checkpoint.KeepAlive(file);
  checkpoint.set_format("safetensors");
  return checkpoint;
}

}  // namespace supra
