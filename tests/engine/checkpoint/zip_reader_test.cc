#include "engine/checkpoint/zip_reader.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/checkpoint/test_files.h"

namespace supra {
namespace {

using testing::BuildZip;
using ::testing::HasSubstr;
using testing::PatchLe;
using testing::TempDir;
using testing::ZipEntrySpec;
using testing::ZipOptions;

absl::StatusOr<ZipArchive> OpenBytes(const TempDir& dir, const std::string& bytes) {
  auto file = MappedFile::Open(dir.Write("archive.zip", bytes));
  if (!file.ok()) return file.status();
  return ZipArchive::Open(*std::move(file));
}

std::string Contents(const ZipArchive& zip, const std::string& name) {
  const ZipEntry* entry = zip.Find(name);
  if (entry == nullptr) return "<missing>";
  auto bytes = zip.Contents(*entry);
  if (!bytes.ok()) return "<" + bytes.status().ToString() + ">";
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

std::vector<ZipEntrySpec> SampleEntries() {
  return {{"archive/data.pkl", "pickle bytes"},
          {"archive/data/0", std::string(100, 'x')},
          {"archive/empty", ""},
          {"archive/version", "3\n"}};
}

void ExpectSampleContents(const ZipArchive& zip) {
  ASSERT_EQ(zip.entries().size(), 4u);
  EXPECT_EQ(zip.entries()[0].name, "archive/data.pkl");
  EXPECT_EQ(zip.entries()[3].name, "archive/version");
  EXPECT_EQ(Contents(zip, "archive/data.pkl"), "pickle bytes");
  EXPECT_EQ(Contents(zip, "archive/data/0"), std::string(100, 'x'));
  EXPECT_EQ(Contents(zip, "archive/empty"), "");
  EXPECT_EQ(Contents(zip, "archive/version"), "3\n");
  EXPECT_EQ(zip.Find("archive/nope"), nullptr);
}

absl::Status OpenStatus(const std::string& bytes) {
  TempDir dir;
  return OpenBytes(dir, bytes).status();
}

// ---- good archives ---------------------------------------------------------

TEST(ZipReaderTest, PlainArchive) {
  TempDir dir;
  auto zip = OpenBytes(dir, BuildZip(SampleEntries()));
  ASSERT_TRUE(zip.ok()) << zip.status();
  ExpectSampleContents(*zip);
  EXPECT_FALSE(zip->zip64());
}

TEST(ZipReaderTest, TorchStyleArchiveIsAlignedAndNotCountedAsZip64) {
  TempDir dir;
  auto zip = OpenBytes(dir, BuildZip(SampleEntries(), {.torch_style = true}));
  ASSERT_TRUE(zip.ok()) << zip.status();
  ExpectSampleContents(*zip);
  for (const ZipEntry& entry : zip->entries()) EXPECT_EQ(entry.data_offset % 64, 0u) << entry.name;
  // The local extra (padding) differs from the central one (none).
  EXPECT_FALSE(zip->zip64());
}

TEST(ZipReaderTest, Zip64Everywhere) {
  TempDir dir;
  for (bool torch_style : {false, true}) {
    auto zip = OpenBytes(dir, BuildZip(SampleEntries(), {.zip64 = true, .torch_style = torch_style}));
    ASSERT_TRUE(zip.ok()) << zip.status();
    ExpectSampleContents(*zip);
    EXPECT_TRUE(zip->zip64());
    for (const ZipEntry& entry : zip->entries()) EXPECT_TRUE(entry.zip64);
  }
}

TEST(ZipReaderTest, CommentsUpToTheMaximumLength) {
  TempDir dir;
  for (size_t length : {size_t{1}, size_t{1000}, size_t{65535}}) {
    // A comment that itself contains an end-record signature must not confuse the search.
    std::string comment(length, 'c');
    if (length >= 30) comment.replace(4, 4, "PK\x05\x06");
    auto zip = OpenBytes(dir, BuildZip(SampleEntries(), {.comment = comment}));
    ASSERT_TRUE(zip.ok()) << zip.status();
    ExpectSampleContents(*zip);
  }
}

TEST(ZipReaderTest, EmptyArchive) {
  TempDir dir;
  auto zip = OpenBytes(dir, BuildZip({}));
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_TRUE(zip->entries().empty());
}

TEST(ZipReaderTest, ReadsTheCommittedZip64Fixture) {
  auto plain_file = MappedFile::Open(testing::ModelDir("fmt_pt_f32") + "/pytorch_model.bin");
  auto zip64_file = MappedFile::Open(testing::ModelDir("fmt_pt_zip64") + "/pytorch_model.bin");
  ASSERT_TRUE(plain_file.ok() && zip64_file.ok());
  auto plain = ZipArchive::Open(*plain_file);
  auto zip64 = ZipArchive::Open(*zip64_file);
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_TRUE(zip64.ok()) << zip64.status();
  EXPECT_FALSE(plain->zip64());
  EXPECT_TRUE(zip64->zip64());
  ASSERT_EQ(plain->entries().size(), zip64->entries().size());
  for (size_t i = 0; i < plain->entries().size(); ++i) {
    const std::string& name = plain->entries()[i].name;
    EXPECT_EQ(zip64->entries()[i].name, name);
    EXPECT_TRUE(zip64->entries()[i].zip64);
    EXPECT_EQ(zip64->entries()[i].data_offset % 64, 0u);
    EXPECT_EQ(Contents(*zip64, name), Contents(*plain, name));
  }
}

// ---- unsupported content ---------------------------------------------------

TEST(ZipReaderTest, CompressedEntryIsRefusedByName) {
  TempDir dir;
  auto zip = OpenBytes(dir, BuildZip({{"a", "stored"}, {"b", "squeezed", 8}}));
  ASSERT_TRUE(zip.ok()) << zip.status();
  EXPECT_EQ(Contents(*zip, "a"), "stored");
  auto bytes = zip->Contents(*zip->Find("b"));
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("'b'"));
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("method 8 (deflate)"));
}

TEST(ZipReaderTest, EncryptedEntryIsRefused) {
  TempDir dir;
  auto zip = OpenBytes(dir, BuildZip({{"secret", "xxxx", 0, 0x0001}}));
  ASSERT_TRUE(zip.ok()) << zip.status();
  auto bytes = zip->Contents(*zip->Find("secret"));
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bytes.status().message()), HasSubstr("encrypted"));
}

TEST(ZipReaderTest, MultiDiskArchiveIsRefused) {
  std::string bytes = BuildZip(SampleEntries());
  PatchLe(bytes, testing::Find(bytes, "PK\x05\x06", true) + 4, 1, 2);  // this disk
  EXPECT_EQ(OpenStatus(bytes).code(), absl::StatusCode::kInvalidArgument);
}

// ---- corrupt or truncated archives -----------------------------------------

void ExpectDataLoss(const std::string& bytes, const std::string& needle) {
  const absl::Status status = OpenStatus(bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(needle));
  EXPECT_THAT(std::string(status.message()), HasSubstr("archive.zip"));
}

TEST(ZipReaderTest, NotAZip) {
  ExpectDataLoss("", "too small");
  ExpectDataLoss("PK", "too small");
  ExpectDataLoss(std::string(5000, 'a'), "no end-of-central-directory record");
}

TEST(ZipReaderTest, BadEndRecordMagic) {
  std::string bytes = BuildZip(SampleEntries());
  bytes[testing::Find(bytes, "PK\x05\x06", true) + 3] = 0x07;
  ExpectDataLoss(bytes, "no end-of-central-directory record");
}

TEST(ZipReaderTest, EndRecordPointsOutsideTheFile) {
  std::string bytes = BuildZip(SampleEntries());
  const size_t end = testing::Find(bytes, "PK\x05\x06", true);
  PatchLe(bytes, end + 16, 0x7FFFFFF0, 4);  // central directory offset
  ExpectDataLoss(bytes, "central directory at offset");
  bytes = BuildZip(SampleEntries());
  PatchLe(bytes, end + 12, 0xFFFFFF00, 4);  // central directory size
  ExpectDataLoss(bytes, "central directory at offset");
}

TEST(ZipReaderTest, EntryCountTooLargeForTheDirectory) {
  std::string bytes = BuildZip(SampleEntries());
  const size_t end = testing::Find(bytes, "PK\x05\x06", true);
  PatchLe(bytes, end + 8, 60000, 2);
  PatchLe(bytes, end + 10, 60000, 2);
  ExpectDataLoss(bytes, "cannot hold 60000 entries");
}

TEST(ZipReaderTest, SaturatedEndRecordWithoutLocator) {
  std::string bytes = BuildZip(SampleEntries());
  PatchLe(bytes, testing::Find(bytes, "PK\x05\x06", true) + 16, 0xFFFFFFFF, 4);
  ExpectDataLoss(bytes, "no ZIP64 locator");
}

TEST(ZipReaderTest, Zip64LocatorPointsOutsideTheFile) {
  std::string bytes = BuildZip(SampleEntries(), {.zip64 = true});
  PatchLe(bytes, testing::Find(bytes, "PK\x06\x07", true) + 8, uint64_t{1} << 40, 8);
  ExpectDataLoss(bytes, "ZIP64 end-of-central-directory record at offset");
}

TEST(ZipReaderTest, Zip64RecordBadSignature) {
  std::string bytes = BuildZip(SampleEntries(), {.zip64 = true});
  bytes[testing::Find(bytes, "PK\x06\x06", true) + 2] = 'X';
  ExpectDataLoss(bytes, "bad ZIP64 end-of-central-directory signature");
}

TEST(ZipReaderTest, Zip64RecordClaimsHugeDirectory) {
  std::string bytes = BuildZip(SampleEntries(), {.zip64 = true});
  PatchLe(bytes, testing::Find(bytes, "PK\x06\x06", true) + 40, uint64_t{1} << 62, 8);
  ExpectDataLoss(bytes, "central directory at offset");
}

TEST(ZipReaderTest, EntryOffsetBeyondEndOfFile) {
  std::string bytes = BuildZip(SampleEntries());
  PatchLe(bytes, testing::Find(bytes, "PK\x01\x02") + 42, 0x7FFFFFF0, 4);
  ExpectDataLoss(bytes, "entry 'archive/data.pkl': local header offset");
}

TEST(ZipReaderTest, Zip64EntryOffsetBeyondEndOfFile) {
  std::string bytes = BuildZip(SampleEntries(), {.zip64 = true});
  // The central ZIP64 extra: id, length, uncompressed, compressed, offset.
  const size_t central = testing::Find(bytes, "PK\x01\x02");
  const size_t extra = central + 46 + std::string("archive/data.pkl").size();
  PatchLe(bytes, extra + 4 + 16, uint64_t{1} << 50, 8);
  ExpectDataLoss(bytes, "local header offset");
}

TEST(ZipReaderTest, Zip64EntrySizeBeyondEndOfFile) {
  std::string bytes = BuildZip(SampleEntries(), {.zip64 = true});
  const size_t central = testing::Find(bytes, "PK\x01\x02");
  const size_t extra = central + 46 + std::string("archive/data.pkl").size();
  PatchLe(bytes, extra + 4, ~uint64_t{0} - 10, 8);
  PatchLe(bytes, extra + 12, ~uint64_t{0} - 10, 8);
  const absl::Status status = OpenStatus(bytes);
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
}

TEST(ZipReaderTest, Zip64ExtraTooShort) {
  std::string bytes = BuildZip(SampleEntries(), {.zip64 = true});
  const size_t central = testing::Find(bytes, "PK\x01\x02");
  const size_t extra = central + 46 + std::string("archive/data.pkl").size();
  PatchLe(bytes, extra + 2, 8, 2);  // claims only one of the three fields it must hold
  ExpectDataLoss(bytes, "ZIP64 extra field is too short");
}

TEST(ZipReaderTest, SaturatedSizeWithoutZip64Extra) {
  std::string bytes = BuildZip(SampleEntries());
  PatchLe(bytes, testing::Find(bytes, "PK\x01\x02") + 24, 0xFFFFFFFF, 4);
  ExpectDataLoss(bytes, "no ZIP64 extra field");
}

TEST(ZipReaderTest, ExtraFieldRunsPastItsBlock) {
  std::string bytes = BuildZip(SampleEntries(), {.zip64 = true});
  const size_t central = testing::Find(bytes, "PK\x01\x02");
  const size_t extra = central + 46 + std::string("archive/data.pkl").size();
  PatchLe(bytes, extra + 2, 200, 2);
  ExpectDataLoss(bytes, "runs past the end of the extra data");
}

TEST(ZipReaderTest, CentralHeaderBadSignature) {
  std::string bytes = BuildZip(SampleEntries());
  const size_t second = bytes.find("PK\x01\x02", testing::Find(bytes, "PK\x01\x02") + 4);
  bytes[second + 3] = 0x09;
  ExpectDataLoss(bytes, "bad central header signature for entry 1");
}

TEST(ZipReaderTest, CentralHeaderNameRunsPastDirectory) {
  std::string bytes = BuildZip(SampleEntries());
  const size_t last = testing::Find(bytes, "PK\x01\x02", true);
  PatchLe(bytes, last + 28, 60000, 2);
  ExpectDataLoss(bytes, "runs past the central directory");
}

TEST(ZipReaderTest, LocalHeaderBadSignature) {
  std::string bytes = BuildZip(SampleEntries());
  bytes[1] = 'Q';
  ExpectDataLoss(bytes, "bad local header signature");
}

TEST(ZipReaderTest, LocalHeaderNameDiffers) {
  std::string bytes = BuildZip(SampleEntries());
  bytes[30] = 'A';  // first byte of the first local name
  ExpectDataLoss(bytes, "local header names 'Archive/data.pkl'");
}

TEST(ZipReaderTest, LocalHeaderSizesDiffer) {
  std::string bytes = BuildZip(SampleEntries());
  PatchLe(bytes, 22, 5, 4);
  ExpectDataLoss(bytes, "local header sizes");
}

TEST(ZipReaderTest, LocalHeaderMethodDiffers) {
  std::string bytes = BuildZip(SampleEntries());
  PatchLe(bytes, 8, 8, 2);
  ExpectDataLoss(bytes, "local header method 8");
}

TEST(ZipReaderTest, LocalExtraRunsIntoTheDirectory) {
  std::string bytes = BuildZip(SampleEntries(), {.torch_style = true});
  const size_t last_local = testing::Find(bytes, "PK\x03\x04", true);
  PatchLe(bytes, last_local + 28, 0xFFFF, 2);  // extra length
  ExpectDataLoss(bytes, "entry 'archive/version'");
}

TEST(ZipReaderTest, EntryDataRunsIntoTheDirectory) {
  std::string bytes = BuildZip(SampleEntries());
  const size_t last = testing::Find(bytes, "PK\x01\x02", true);
  PatchLe(bytes, last + 20, 1000, 4);
  PatchLe(bytes, last + 24, 1000, 4);
  const size_t last_local = testing::Find(bytes, "PK\x03\x04", true);
  PatchLe(bytes, last_local + 18, 1000, 4);
  PatchLe(bytes, last_local + 22, 1000, 4);
  ExpectDataLoss(bytes, "runs past the data area");
}

TEST(ZipReaderTest, DuplicateEntryName) {
  ExpectDataLoss(BuildZip({{"same", "1"}, {"same", "2"}}), "'same' appears twice");
}

// Every prefix of an archive, and every archive with a byte range cut out of it,
// is an error (or, for a few harmless cuts, a valid archive), never a crash or an
// out-of-bounds read (run under ASan).
TEST(ZipReaderTest, TruncationsAndCutsNeverCrash) {
  TempDir dir;
  for (const ZipOptions& options : {ZipOptions{}, ZipOptions{.torch_style = true}, ZipOptions{.zip64 = true}}) {
    const std::string bytes = BuildZip(SampleEntries(), options);
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
      auto zip = OpenBytes(dir, bytes.substr(0, cut));
      EXPECT_EQ(zip.status().code(), absl::StatusCode::kDataLoss) << cut << ": " << zip.status();
    }
    for (size_t start = 0; start + 8 <= bytes.size(); start += 7) {
      std::string cut = bytes;
      cut.erase(start, 8);
      auto zip = OpenBytes(dir, cut);
      // A cut between the central directory and the end record (the unused ZIP64
      // record) leaves a valid archive; a cut in the ZIP64 locator may read as a
      // multi-disk archive. Anything else is corruption.
      if (zip.ok()) continue;
      EXPECT_THAT(zip.status().code(),
                  ::testing::AnyOf(absl::StatusCode::kDataLoss, absl::StatusCode::kInvalidArgument))
          << start << ": " << zip.status();
    }
  }
}

}  // namespace
}  // namespace supra
