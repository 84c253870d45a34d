#include "engine/util/mapped_file.h"

#include <cstdint>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/checkpoint/test_files.h"

namespace supra {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

std::string AsString(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

TEST(MappedFileTest, MapsTheWholeFile) {
  TempDir dir;
  const std::string path = dir.Write("f.bin", "hello, mapping");
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->size(), 14u);
  EXPECT_EQ((*file)->path(), path);
  EXPECT_EQ(AsString((*file)->bytes()), "hello, mapping");
}

TEST(MappedFileTest, EmptyFileIsAnEmptySpan) {
  TempDir dir;
  auto file = MappedFile::Open(dir.Write("empty", ""));
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->size(), 0u);
  EXPECT_TRUE((*file)->bytes().empty());
  auto whole = (*file)->Slice(0, 0, "nothing");
  ASSERT_TRUE(whole.ok());
  EXPECT_TRUE(whole->empty());
  EXPECT_EQ((*file)->Slice(0, 1, "a byte").status().code(), absl::StatusCode::kDataLoss);
}

TEST(MappedFileTest, MissingFileIsNotFound) {
  TempDir dir;
  auto file = MappedFile::Open(dir.File("absent"));
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(file.status().message()), HasSubstr("absent"));
}

TEST(MappedFileTest, DirectoryIsRefused) {
  TempDir dir;
  auto file = MappedFile::Open(dir.path());
  EXPECT_FALSE(file.ok());
  EXPECT_THAT(std::string(file.status().message()), HasSubstr(dir.path()));
}

TEST(MappedFileTest, SliceChecksBoundsWithoutOverflow) {
  TempDir dir;
  auto file = MappedFile::Open(dir.Write("f", "0123456789"));
  ASSERT_TRUE(file.ok());
  const MappedFile& f = **file;

  auto middle = f.Slice(2, 5, "middle");
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(AsString(*middle), "23456");
  auto tail = f.Slice(10, 0, "end");
  ASSERT_TRUE(tail.ok());
  EXPECT_TRUE(tail->empty());

  for (auto [offset, length] : std::vector<std::pair<uint64_t, uint64_t>>{{0, 11},
                                                                          {10, 1},
                                                                          {11, 0},
                                                                          {UINT64_MAX, 2},
                                                                          {2, UINT64_MAX},
                                                                          {UINT64_MAX, UINT64_MAX},
                                                                          {5, UINT64_MAX - 2}}) {
    auto slice = f.Slice(offset, length, "the thing");
    ASSERT_FALSE(slice.ok()) << offset << "+" << length;
    EXPECT_EQ(slice.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(slice.status().message()), HasSubstr("the thing"));
    EXPECT_THAT(std::string(slice.status().message()), HasSubstr(f.path()));
  }
}

TEST(MappedFileTest, RangeFits) {
  static_assert(RangeFits(0, 0, 0));
  static_assert(RangeFits(3, 7, 10));
  static_assert(!RangeFits(3, 8, 10));
  static_assert(!RangeFits(11, 0, 10));
  static_assert(!RangeFits(UINT64_MAX, 1, UINT64_MAX));
  static_assert(RangeFits(UINT64_MAX, 0, UINT64_MAX));
  static_assert(!RangeFits(1, UINT64_MAX, UINT64_MAX));
}

TEST(MappedFileTest, SubSpanOfABuffer) {
  const std::byte buffer[4] = {std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
  auto inner = SubSpan(buffer, 1, 2, "buf", "inner");
  ASSERT_TRUE(inner.ok());
  EXPECT_EQ(inner->data(), buffer + 1);
  EXPECT_EQ(inner->size(), 2u);
  auto outside = SubSpan(buffer, 3, 2, "buf", "outer");
  EXPECT_EQ(outside.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(outside.status().message()), HasSubstr("buf: outer at offset 3 (2 bytes)"));
}

TEST(MappedFileTest, MappingOutlivesEveryOtherHandle) {
  TempDir dir;
  const std::string path = dir.Write("f", "persistent");
  std::shared_ptr<const void> keep_alive;
  const std::byte* data = nullptr;
  {
    auto file = MappedFile::Open(path);
    ASSERT_TRUE(file.ok());
    data = (*file)->data();
    keep_alive = *file;
  }
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(data), 10), "persistent");
}

TEST(MappedFileTest, MoveTransfersTheMapping) {
  TempDir dir;
  auto opened = MappedFile::Open(dir.Write("f", "abc"));
  ASSERT_TRUE(opened.ok());
  // Open hands out shared_ptr<const>; moving requires a non-const object of our own.
  MappedFile& original = const_cast<MappedFile&>(**opened);
  const std::byte* data = original.data();
  MappedFile moved(std::move(original));
  EXPECT_EQ(moved.data(), data);
  EXPECT_EQ(moved.size(), 3u);
  EXPECT_EQ(original.data(), nullptr);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(original.size(), 0u);
  MappedFile constructed = std::move(moved);
  EXPECT_EQ(constructed.data(), data);

  auto other = MappedFile::Open(dir.Write("g", "other contents"));
  ASSERT_TRUE(other.ok());
  MappedFile& assigned = const_cast<MappedFile&>(**other);
  assigned = std::move(constructed);  // unmaps "g", takes over "f"
  EXPECT_EQ(assigned.data(), data);
  EXPECT_EQ(AsString(assigned.bytes()), "abc");
  EXPECT_EQ(assigned.path(), dir.File("f"));
}

}  // namespace
}  // namespace supra
