// ReadPytorchZip: the zip format torch.save has written since PyTorch 1.6.
//
// Layout: <prefix>/data.pkl (the pickled state dict), <prefix>/data/<key> (one
// stored entry per storage), optionally <prefix>/byteorder and <prefix>/version.
// The state dict is an OrderedDict (or dict) of name ->
//   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
//                                   requires_grad, backward_hooks[, metadata])
// possibly wrapped in torch._utils._rebuild_parameter(tensor, requires_grad, hooks),
// where storage is the persistent id
//   ('storage', torch.<Type>Storage, key, location, numel).
// Tensors that share a storage (tied weights) become views of the same bytes.
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/checkpoint/checkpoint.h"
#include "engine/checkpoint/pickle.h"
#include "engine/checkpoint/zip_reader.h"
#include "engine/util/absl_compat.h"
#include "engine/util/mapped_file.h"
#include "engine/util/status_macros.h"

namespace supra {
namespace {

using Kind = PickleValue::Kind;

bool StorageDType(const PickleValue& type, DType& dtype) {
  if (type.kind != Kind::kGlobal || type.text != "torch") return false;
  static const std::map<std::string, DType, std::less<>> kTypes = {
      {"FloatStorage", DType::kF32},  {"BFloat16Storage", DType::kBF16}, {"HalfStorage", DType::kF16},
      {"DoubleStorage", DType::kF64}, {"IntStorage", DType::kI32},       {"LongStorage", DType::kI64},
  };
  auto it = kTypes.find(type.name);
  if (it == kTypes.end()) return false;
  dtype = it->second;
  return true;
}

struct Storage {
  DType dtype = DType::kF32;
  uint64_t numel = 0;  // elements of dtype
  std::span<const std::byte> bytes;
  std::string source;  // "file:entry"
};

// Interprets one unpickled state dict against its archive.
class StateDictReader {
 public:
  StateDictReader(const ZipArchive& zip, std::string prefix) : zip_(zip), prefix_(std::move(prefix)) {}

  absl::Status Read(const PickleValue& root, Checkpoint& checkpoint) {
    if (root.kind != Kind::kDict && !root.IsCallOf("collections", "OrderedDict")) {
      return Unsupported(
          absl::StrCat("data.pkl holds a ", DescribePickleValue(root), ", not a state dict (a dict of tensors)"));
    }
    for (const auto& [key, value] : root.dict_items) {
      if (key->kind != Kind::kString) {
        return Unsupported(absl::StrCat("state dict key ", DescribePickleValue(*key), " is not a string"));
      }
      ASSIGN_OR_RETURN(TensorView view, ReadTensor(*value, key->text, /*allow_parameter=*/true));
      RETURN_IF_ERROR(checkpoint.Add(key->text, std::move(view)));
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<TensorView> ReadTensor(const PickleValue& value, const std::string& name, bool allow_parameter) {
    const bool is_parameter = value.IsCallOf("torch._utils", "_rebuild_parameter") ||
                              value.IsCallOf("torch._utils", "_rebuild_parameter_with_state");
    if (is_parameter && allow_parameter) {
      if (value.args->items.empty()) return Corrupt(name, "_rebuild_parameter without arguments");
      return ReadTensor(*value.args->items[0], name, /*allow_parameter=*/false);
    }
    if (!value.IsCallOf("torch._utils", "_rebuild_tensor_v2")) {
      return Unsupported(absl::StrCat("tensor '", name, "' is a ", DescribePickleValue(value),
                                      "; only dense tensors (_rebuild_tensor_v2) are supported"));
    }
    const std::vector<const PickleValue*>& args = value.args->items;
    if (args.size() < 4) return Corrupt(name, absl::StrCat("_rebuild_tensor_v2 with ", args.size(), " arguments"));
    ASSIGN_OR_RETURN(const Storage* storage, ReadStorage(*args[0], name));
    if (args[1]->kind != Kind::kInt || args[1]->int_value < 0) {
      return Corrupt(name, absl::StrCat("bad storage offset ", DescribePickleValue(*args[1])));
    }
    const uint64_t offset = static_cast<uint64_t>(args[1]->int_value);
    ASSIGN_OR_RETURN(std::vector<int64_t> shape, ReadInts(*args[2], name, "size"));
    ASSIGN_OR_RETURN(std::vector<int64_t> stride, ReadInts(*args[3], name, "stride"));
    if (shape.size() != stride.size()) {
      return Corrupt(name, absl::StrCat("size has ", shape.size(), " dimensions but stride has ", stride.size()));
    }

    uint64_t numel = 1;
    for (int64_t d : shape) {
      if (d < 0) return Corrupt(name, absl::StrCat("negative dimension ", d));
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
        return Corrupt(name, "element count overflows");
      }
    }
    if (numel > 0) {
      if (!RangeFits(offset, numel, storage->numel)) {
        return Corrupt(name, absl::StrCat("elements [", offset, ", ", offset, " + ", numel,
                                          ") lie outside its storage of ", storage->numel, " elements"));
      }
      // Row-major contiguous; the stride of a dimension of size 1 is irrelevant.
      int64_t expected = 1;
      for (size_t d = shape.size(); d-- > 0;) {
        if (shape[d] != 1 && stride[d] != expected) {
          return Unsupported(absl::StrCat("tensor '", name, "' is not contiguous (size [", absl::StrJoin(shape, ", "),
                                          "], stride [", absl::StrJoin(stride, ", "),
                                          "]); save it with .contiguous()"));
        }
        expected *= shape[d];  // no overflow: numel fits in the storage
      }
    }
    const size_t element_size = DTypeSize(storage->dtype);
    TensorView view;
    view.dtype = storage->dtype;
    view.shape = std::move(shape);
    view.nbytes = static_cast<size_t>(numel) * element_size;
    view.data = numel > 0 ? storage->bytes.data() + offset * element_size : storage->bytes.data();
    view.source = storage->source;
    return view;
  }

  absl::StatusOr<std::vector<int64_t>> ReadInts(const PickleValue& value, const std::string& name,
                                                std::string_view what) {
    if (value.kind != Kind::kTuple) {
      return Corrupt(name, absl::StrCat(ToAbsl(what), " is a ", DescribePickleValue(value), ", not a tuple"));
    }
    std::vector<int64_t> out;
    out.reserve(value.items.size());
    for (const PickleValue* item : value.items) {
      if (item->kind != Kind::kInt) {
        return Corrupt(name, absl::StrCat(ToAbsl(what), " holds a ", DescribePickleValue(*item)));
      }
      out.push_back(item->int_value);
    }
    return out;
  }

  absl::StatusOr<const Storage*> ReadStorage(const PickleValue& value, const std::string& name) {
    if (value.kind != Kind::kPersistentId || value.args->kind != Kind::kTuple || value.args->items.size() < 5 ||
        value.args->items[0]->kind != Kind::kString || value.args->items[0]->text != "storage") {
      return Corrupt(name, absl::StrCat("storage is a ", DescribePickleValue(value),
                                        ", not a persistent id ('storage', type, key, location, numel)"));
    }
    const std::vector<const PickleValue*>& id = value.args->items;
    DType dtype;
    if (!StorageDType(*id[1], dtype)) {
      return Unsupported(
          absl::StrCat("tensor '", name, "' has unsupported storage type ", DescribePickleValue(*id[1])));
    }
    if (id[2]->kind != Kind::kString || id[4]->kind != Kind::kInt || id[4]->int_value < 0) {
      return Corrupt(name, "malformed storage persistent id");
    }
    const std::string& key = id[2]->text;
    const uint64_t numel = static_cast<uint64_t>(id[4]->int_value);
    auto it = storages_.find(key);
    if (it != storages_.end()) {
      if (it->second.dtype != dtype || it->second.numel != numel) {
        return Corrupt(name, absl::StrCat("storage '", key, "' is described twice differently"));
      }
      return &it->second;
    }
    const std::string entry_name = absl::StrCat(prefix_, "/data/", key);
    const ZipEntry* entry = zip_.Find(entry_name);
    if (entry == nullptr) return Corrupt(name, absl::StrCat("storage entry '", entry_name, "' is missing"));
    Storage storage;
    storage.dtype = dtype;
    storage.numel = numel;
    storage.source = absl::StrCat(zip_.path(), ":", entry_name);
    ASSIGN_OR_RETURN(storage.bytes, zip_.Contents(*entry));
    const uint64_t element_size = DTypeSize(dtype);
    if (storage.bytes.size() / element_size != numel || storage.bytes.size() % element_size != 0) {
      return Corrupt(name, absl::StrCat("storage entry '", entry_name, "' holds ", storage.bytes.size(), " bytes, but ",
                                        numel, " elements of ", ToAbsl(DTypeName(dtype)), " were recorded"));
    }
    return &storages_.emplace(key, std::move(storage)).first->second;
  }

  absl::Status Corrupt(const std::string& tensor, std::string_view problem) const {
    return absl::DataLossError(absl::StrCat(zip_.path(), ": tensor '", tensor, "': ", ToAbsl(problem)));
  }
  absl::Status Unsupported(std::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(zip_.path(), ": ", ToAbsl(problem)));
  }

  const ZipArchive& zip_;
  std::string prefix_;
  std::map<std::string, Storage> storages_;  // by key; node-based, so pointers stay valid
};

// The archive's top folder: the one holding data.pkl.
absl::StatusOr<std::string> FindPrefix(const ZipArchive& zip) {
  constexpr std::string_view kPickle = "/data.pkl";
  std::string prefix;
  int found = 0;
  for (const ZipEntry& entry : zip.entries()) {
    const std::string_view name = entry.name;
    if (name.size() <= kPickle.size() || !name.ends_with(kPickle)) continue;
    const std::string_view folder = name.substr(0, name.size() - kPickle.size());
    if (folder.find('/') != std::string_view::npos) continue;
    prefix = std::string(folder);
    ++found;
  }
  if (found == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(zip.path(), ": no <folder>/data.pkl entry; not a checkpoint written by torch.save"));
  }
  if (found > 1) {
    return absl::InvalidArgumentError(absl::StrCat(zip.path(), ": several top-level folders hold a data.pkl"));
  }
  return prefix;
}

absl::Status CheckByteOrder(const ZipArchive& zip, const std::string& prefix) {
  const ZipEntry* entry = zip.Find(absl::StrCat(prefix, "/byteorder"));
  if (entry == nullptr) return absl::OkStatus();  // older writers omit it; they were little-endian
  ASSIGN_OR_RETURN(const std::span<const std::byte> bytes, zip.Contents(*entry));
  const std::string_view order(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (order != "little") {
    return absl::InvalidArgumentError(absl::StrCat(zip.path(), ": byte order '", ToAbsl(order.substr(0, 16)),
                                                   "' is not supported; only little-endian checkpoints are"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Checkpoint> ReadPytorchZip(const std::string& path) {
  ASSIGN_OR_RETURN(std::shared_ptr<const MappedFile> file, MappedFile::Open(path));
  // torch.save before 1.6 (or with _use_new_zipfile_serialization=False) writes bare pickles.
  if (file->size() >= 2 && file->data()[0] == std::byte{0x80} && static_cast<uint8_t>(file->data()[1]) <= 5) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a current torch"));
  }
  ASSIGN_OR_RETURN(ZipArchive zip, ZipArchive::Open(file));
  ASSIGN_OR_RETURN(const std::string prefix, FindPrefix(zip));
  RETURN_IF_ERROR(CheckByteOrder(zip, prefix));

  const std::string pickle_name = absl::StrCat(prefix, "/data.pkl");
  ASSIGN_OR_RETURN(const std::span<const std::byte> pickle_bytes, zip.Contents(*zip.Find(pickle_name)));
  ASSIGN_OR_RETURN(const Pickle pickle, Unpickle(pickle_bytes, absl::StrCat(path, ":", pickle_name)));

  Checkpoint checkpoint;
  StateDictReader reader(zip, prefix);
  RETURN_IF_ERROR(reader.Read(pickle.root(), checkpoint));
  checkpoint.KeepAlive(file);
  checkpoint.set_format(zip.zip64() ? "pytorch zip (zip64)" : "pytorch zip");
  return checkpoint;
}

}  // namespace supra
