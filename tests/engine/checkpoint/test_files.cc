#include "tests/engine/checkpoint/test_files.h"

#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace supra::testing {
namespace {

uint32_t Crc32(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (char c : data) {
    crc ^= static_cast<uint8_t>(c);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

constexpr uint32_t kSat32 = 0xFFFFFFFF;
constexpr uint16_t kSat16 = 0xFFFF;

}  // namespace

std::string ModelDir(std::string_view name) { return std::string(SUPRA_TEST_DATA_DIR "/models/") + std::string(name); }

TempDir::TempDir() {
  std::string pattern = ::testing::TempDir() + "supra_ckpt_XXXXXX";
  char* made = ::mkdtemp(pattern.data());
  EXPECT_NE(made, nullptr) << "mkdtemp failed";
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
}

std::string TempDir::File(std::string_view name) const { return path_ + "/" + std::string(name); }

std::string TempDir::Write(std::string_view name, std::string_view bytes) const {
  std::string path = File(name);
  WriteFile(path, bytes);
  return path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(out.good()) << "cannot write " << path;
}

void PutLe(std::string& out, uint64_t value, int width) {
  for (int i = 0; i < width; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

void PatchLe(std::string& bytes, size_t offset, uint64_t value, int width) {
  ASSERT_LE(offset + static_cast<size_t>(width), bytes.size());
  for (int i = 0; i < width; ++i) bytes[offset + i] = static_cast<char>((value >> (8 * i)) & 0xFF);
}

size_t Find(const std::string& haystack, std::string_view needle, bool last) {
  const size_t pos = last ? haystack.rfind(needle) : haystack.find(needle);
  EXPECT_NE(pos, std::string::npos) << "pattern not found";
  return pos == std::string::npos ? 0 : pos;
}

std::string BuildZip(const std::vector<ZipEntrySpec>& entries, const ZipOptions& options) {
  const bool zip64 = options.zip64;
  const bool descriptor = options.torch_style && !zip64;
  std::string out;
  std::string central;
  for (const ZipEntrySpec& entry : entries) {
    const uint64_t offset = out.size();
    const uint64_t size = entry.data.size();
    const uint32_t crc = Crc32(entry.data);
    const uint16_t flags = static_cast<uint16_t>(0x0800 | entry.flags | (descriptor ? 0x0008 : 0));
    std::string extra;
    if (zip64) {
      PutLe(extra, 0x0001, 2);
      PutLe(extra, 16, 2);
      PutLe(extra, size, 8);
      PutLe(extra, size, 8);
    }
    if (options.torch_style) {  // align the data to 64 bytes, as PyTorch does
      const uint64_t start = offset + 30 + entry.name.size() + extra.size() + 4;
      const uint64_t pad = (64 - start % 64) % 64;
      PutLe(extra, 0x4246, 2);
      PutLe(extra, pad, 2);
      extra.append(pad, 'Z');
    }
    PutLe(out, 0x04034b50, 4);
    PutLe(out, zip64 ? 45 : 20, 2);
    PutLe(out, flags, 2);
    PutLe(out, entry.method, 2);
    PutLe(out, 0, 4);  // time, date
    PutLe(out, descriptor ? 0 : crc, 4);
    const uint64_t local_size = descriptor ? 0 : (zip64 ? kSat32 : size);
    PutLe(out, local_size, 4);
    PutLe(out, local_size, 4);
    PutLe(out, entry.name.size(), 2);
    PutLe(out, extra.size(), 2);
    out += entry.name;
    out += extra;
    out += entry.data;
    if (descriptor) {  // torch's descriptor carries 8-byte sizes
      PutLe(out, 0x08074b50, 4);
      PutLe(out, crc, 4);
      PutLe(out, size, 8);
      PutLe(out, size, 8);
    }

    std::string central_extra;
    if (zip64) {
      PutLe(central_extra, 0x0001, 2);
      PutLe(central_extra, 24, 2);
      PutLe(central_extra, size, 8);
      PutLe(central_extra, size, 8);
      PutLe(central_extra, offset, 8);
    }
    PutLe(central, 0x02014b50, 4);
    PutLe(central, zip64 ? 45 : 20, 2);
    PutLe(central, zip64 ? 45 : 20, 2);
    PutLe(central, flags, 2);
    PutLe(central, entry.method, 2);
    PutLe(central, 0, 4);
    PutLe(central, crc, 4);
    PutLe(central, zip64 ? kSat32 : size, 4);
    PutLe(central, zip64 ? kSat32 : size, 4);
    PutLe(central, entry.name.size(), 2);
    PutLe(central, central_extra.size(), 2);
    PutLe(central, 0, 2);  // comment
    PutLe(central, 0, 2);  // disk
    PutLe(central, 0, 2);  // internal attributes
    PutLe(central, 0, 4);  // external attributes
    PutLe(central, zip64 ? kSat32 : offset, 4);
    central += entry.name;
    central += central_extra;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  const uint64_t n = entries.size();
  if (zip64 || options.torch_style) {
    const uint64_t record = out.size();
    PutLe(out, 0x06064b50, 4);
    PutLe(out, 44, 8);
    PutLe(out, 45, 2);
    PutLe(out, 45, 2);
    PutLe(out, 0, 4);
    PutLe(out, 0, 4);
    PutLe(out, n, 8);
    PutLe(out, n, 8);
    PutLe(out, central.size(), 8);
    PutLe(out, cd_offset, 8);
    PutLe(out, 0x07064b50, 4);
    PutLe(out, 0, 4);
    PutLe(out, record, 8);
    PutLe(out, 1, 4);
  }
  PutLe(out, 0x06054b50, 4);
  PutLe(out, 0, 2);
  PutLe(out, 0, 2);
  PutLe(out, zip64 ? kSat16 : n, 2);
  PutLe(out, zip64 ? kSat16 : n, 2);
  PutLe(out, zip64 ? kSat32 : central.size(), 4);
  PutLe(out, zip64 ? kSat32 : cd_offset, 4);
  PutLe(out, options.comment.size(), 2);
  out += options.comment;
  return out;
}

std::string BuildSafetensorsRaw(std::string_view header, std::string_view data) {
  std::string out;
  PutLe(out, header.size(), 8);
  out += header;
  out += data;
  return out;
}

std::string BuildSafetensors(const std::vector<SafetensorsTensor>& tensors) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::string data;
  for (const SafetensorsTensor& t : tensors) {
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) header += (i ? "," : "") + std::to_string(t.shape[i]);
    header +=
        "],\"data_offsets\":[" + std::to_string(data.size()) + "," + std::to_string(data.size() + t.data.size()) + "]}";
    data += t.data;
  }
  header += "}";
  return BuildSafetensorsRaw(header, data);
}

PickleWriter& PickleWriter::Proto(int version) {
  out_.push_back(static_cast<char>(0x80));
  out_.push_back(static_cast<char>(version));
  return *this;
}

PickleWriter& PickleWriter::Op(uint8_t opcode) {
  out_.push_back(static_cast<char>(opcode));
  return *this;
}

PickleWriter& PickleWriter::Global(std::string_view module, std::string_view name) {
  out_ += 'c';
  out_ += module;
  out_ += '\n';
  out_ += name;
  out_ += '\n';
  return *this;
}

PickleWriter& PickleWriter::Int(int64_t value) {
  if (value >= 0 && value < 256) {
    Op('K');
    PutLe(out_, static_cast<uint64_t>(value), 1);
  } else if (value >= 0 && value < 65536) {
    Op('M');
    PutLe(out_, static_cast<uint64_t>(value), 2);
  } else if (value >= INT32_MIN && value <= INT32_MAX) {
    Op('J');
    PutLe(out_, static_cast<uint32_t>(static_cast<int32_t>(value)), 4);
  } else {
    Op(0x8a);
    out_.push_back(8);
    PutLe(out_, static_cast<uint64_t>(value), 8);
  }
  return *this;
}

PickleWriter& PickleWriter::Float(double value) {
  Op('G');
  const uint64_t bits = std::bit_cast<uint64_t>(value);
  for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  return *this;
}

PickleWriter& PickleWriter::Str(std::string_view text) {
  Op('X');
  PutLe(out_, text.size(), 4);
  out_ += text;
  return *this;
}

PickleWriter& PickleWriter::Put(uint32_t index) {
  if (index < 256) {
    Op('q');
    PutLe(out_, index, 1);
  } else {
    Op('r');
    PutLe(out_, index, 4);
  }
  return *this;
}

PickleWriter& PickleWriter::Get(uint32_t index) {
  if (index < 256) {
    Op('h');
    PutLe(out_, index, 1);
  } else {
    Op('j');
    PutLe(out_, index, 4);
  }
  return *this;
}

PickleWriter& PickleWriter::Raw(std::string_view bytes) {
  out_ += bytes;
  return *this;
}

PickleWriter& PickleWriter::Stop() { return Op('.'); }

std::string TorchStateDictPickle(const std::vector<TorchTensorSpec>& tensors) {
  PickleWriter w;
  w.Proto(2).Global("collections", "OrderedDict").Op(')').Op('R').Op('(');
  for (const TorchTensorSpec& t : tensors) {
    w.Str(t.name);
    if (t.parameter) w.Global("torch._utils", "_rebuild_parameter");
    w.Global("torch._utils", "_rebuild_tensor_v2").Op('(');
    // persistent id ('storage', torch.<Type>, key, 'cpu', numel)
    w.Op('(').Str("storage").Global("torch", t.storage_type).Str(t.key).Str("cpu").Int(t.storage_numel).Op('t');
    w.Op('Q');
    w.Int(t.offset);
    std::vector<int64_t> stride = t.stride;
    if (stride.empty()) {
      stride.resize(t.size.size());
      int64_t s = 1;
      for (size_t d = t.size.size(); d-- > 0;) {
        stride[d] = s;
        s *= t.size[d];
      }
    }
    w.Op('(');
    for (int64_t d : t.size) w.Int(d);
    w.Op('t').Op('(');
    for (int64_t d : stride) w.Int(d);
    w.Op('t');
    w.Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R');  // requires_grad, backward_hooks
    w.Op('t').Op('R');
    if (t.parameter) w.Op(0x88).Global("collections", "OrderedDict").Op(')').Op('R').Op(0x87).Op('R');
  }
  w.Op('u').Stop();
  return w.bytes();
}

std::string BuildTorchZip(const std::string& prefix, const std::string& pickle,
                          const std::vector<std::pair<std::string, std::string>>& storages, const ZipOptions& options,
                          const std::string& byteorder) {
  std::vector<ZipEntrySpec> entries;
  entries.push_back({prefix + "/data.pkl", pickle});
  if (!byteorder.empty()) entries.push_back({prefix + "/byteorder", byteorder});
  for (const auto& [key, bytes] : storages) entries.push_back({absl::StrCat(prefix, "/data/", key), bytes});
  entries.push_back({prefix + "/version", "3\n"});
  return BuildZip(entries, options);
}

std::string F32Bytes(const std::vector<float>& values) {
  std::string out;
  for (float v : values) PutLe(out, std::bit_cast<uint32_t>(v), 4);
  return out;
}

std::string U16Bytes(const std::vector<uint16_t>& values) {
  std::string out;
  for (uint16_t v : values) PutLe(out, v, 2);
  return out;
}

}  // namespace supra::testing
