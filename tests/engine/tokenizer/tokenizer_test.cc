#include "engine/tokenizer/tokenizer.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/tokenizer/test_tokenizer.h"

namespace supra {
namespace {

using ::supra::testing::TestTokenizer;
using ::supra::testing::TokenizerDataPath;
using ::testing::HasSubstr;

nlohmann::json LoadGolden() {
  std::ifstream in(TokenizerDataPath("golden.json"));
  EXPECT_TRUE(in.good()) << "missing " << TokenizerDataPath("golden.json");
  return nlohmann::json::parse(in);
}

TEST(TokenizerTest, SpecialIdsAndVocabMatchGolden) {
  const nlohmann::json golden = LoadGolden();
  const Tokenizer& tok = TestTokenizer();
  EXPECT_EQ(tok.vocab_size(), golden.at("vocab_size").get<int>());
  EXPECT_EQ(tok.bos_id(), golden.at("bos_id").get<int>());
  EXPECT_EQ(tok.eos_id(), golden.at("eos_id").get<int>());
  EXPECT_EQ(tok.unk_id(), golden.at("unk_id").get<int>());
  EXPECT_TRUE(tok.IsControl(tok.bos_id()));
  EXPECT_TRUE(tok.IsControl(tok.eos_id()));
  EXPECT_FALSE(tok.IsByte(tok.bos_id()));
}

TEST(TokenizerTest, EncodeMatchesGolden) {
  const nlohmann::json golden = LoadGolden();
  const Tokenizer& tok = TestTokenizer();
  ASSERT_FALSE(golden.at("cases").empty());
  for (const nlohmann::json& c : golden.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    SCOPED_TRACE(text);
    EXPECT_EQ(tok.Encode(text), c.at("ids").get<std::vector<int32_t>>());
  }
}

TEST(TokenizerTest, PiecesMatchGolden) {
  const nlohmann::json golden = LoadGolden();
  const Tokenizer& tok = TestTokenizer();
  for (const nlohmann::json& c : golden.at("cases")) {
    SCOPED_TRACE(c.at("text").get<std::string>());
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const auto pieces = c.at("pieces").get<std::vector<std::string>>();
    ASSERT_EQ(ids.size(), pieces.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      absl::StatusOr<std::string_view> piece = tok.IdToPiece(ids[i]);
      ASSERT_TRUE(piece.ok()) << piece.status();
      EXPECT_EQ(*piece, pieces[i]) << "id " << ids[i];
    }
  }
}

TEST(TokenizerTest, DecodeMatchesGolden) {
  const nlohmann::json golden = LoadGolden();
  const Tokenizer& tok = TestTokenizer();
  for (const nlohmann::json& c : golden.at("cases")) {
    SCOPED_TRACE(c.at("text").get<std::string>());
    absl::StatusOr<std::string> text = tok.Decode(c.at("ids").get<std::vector<int32_t>>());
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, c.at("decoded").get<std::string>());
  }
}

// Decode of hand-picked id sequences: BOS/EOS, <unk>, a byte-fallback
// sequence cut inside a character.
TEST(TokenizerTest, DecodeCasesMatchGolden) {
  const nlohmann::json golden = LoadGolden();
  const Tokenizer& tok = TestTokenizer();
  ASSERT_FALSE(golden.at("decode_cases").empty());
  for (const nlohmann::json& c : golden.at("decode_cases")) {
    SCOPED_TRACE(c.at("description").get<std::string>());
    absl::StatusOr<std::string> text = tok.Decode(c.at("ids").get<std::vector<int32_t>>());
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, c.at("text").get<std::string>());
  }
}

// Byte pieces are exactly the "<0xHH>" pieces, and ByteValue reads HH.
TEST(TokenizerTest, BytePiecesCarryTheirByte) {
  const Tokenizer& tok = TestTokenizer();
  int byte_pieces = 0;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string_view piece = *tok.IdToPiece(id);
    const bool looks_like_byte = piece.size() == 6 && piece.substr(0, 3) == "<0x" && piece.back() == '>';
    EXPECT_EQ(tok.IsByte(id), looks_like_byte) << piece;
    if (!tok.IsByte(id)) {
      EXPECT_FALSE(tok.ByteValue(id).has_value());
      continue;
    }
    ++byte_pieces;
    EXPECT_EQ(*tok.ByteValue(id), std::stoi(std::string(piece.substr(3, 2)), nullptr, 16)) << piece;
  }
  EXPECT_EQ(byte_pieces, 256);  // byte fallback covers every byte
}

TEST(TokenizerTest, IdsOutsideVocabAreRejected) {
  const Tokenizer& tok = TestTokenizer();
  const int32_t v = tok.vocab_size();
  for (const int32_t bad : {-1, v, v + 1000}) {
    absl::StatusOr<std::string> text = tok.Decode(std::vector<int32_t>{tok.bos_id(), 5, bad, 6});
    ASSERT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(text.status().message(), HasSubstr("token id " + std::to_string(bad)));
    EXPECT_THAT(text.status().message(), HasSubstr("position 2"));
    EXPECT_EQ(tok.IdToPiece(bad).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(tok.IsByte(bad));
    EXPECT_FALSE(tok.IsControl(bad));
    EXPECT_FALSE(tok.ByteValue(bad).has_value());
  }
  absl::StatusOr<std::string> last = tok.Decode(std::vector<int32_t>{v - 1});
  EXPECT_TRUE(last.ok()) << last.status();
}

TEST(TokenizerTest, EmptyInputs) {
  const Tokenizer& tok = TestTokenizer();
  EXPECT_TRUE(tok.Encode("").empty());
  absl::StatusOr<std::string> text = tok.Decode({});
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "");
}

// Text from the network is not always UTF-8; Encode must take it (SentencePiece
// maps a malformed byte to U+FFFD) rather than crash or drop the rest.
TEST(TokenizerTest, MalformedUtf8IsEncoded) {
  const Tokenizer& tok = TestTokenizer();
  const std::vector<int32_t> ids = tok.Encode(
      "ab\xff\xfe"
      "cd\xe2\x82");
  absl::StatusOr<std::string> text = tok.Decode(ids);
  ASSERT_TRUE(text.ok());
  EXPECT_THAT(*text, ::testing::StartsWith("ab"));
  EXPECT_THAT(*text, HasSubstr("cd"));
}

class TokenizerFileTest : public ::testing::Test {
 protected:
  std::string TempPath(const std::string& name) {
    const std::string path = ::testing::TempDir() + "/supra_tokenizer_test_" + name;
    paths_.push_back(path);
    return path;
  }
  void TearDown() override {
    for (const std::string& p : paths_) std::filesystem::remove(p);
  }

 private:
  std::vector<std::string> paths_;
};

TEST_F(TokenizerFileTest, MissingFileIsNotFound) {
  auto tok = Tokenizer::Load(TempPath("does_not_exist.model"));
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tok.status().message(), HasSubstr("does_not_exist.model"));
}

TEST_F(TokenizerFileTest, CorruptFilesAreDataLoss) {
  std::ifstream in(TokenizerDataPath("tokenizer.model"), std::ios::binary);
  const std::string model((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(model.size(), 1000u);
  const std::vector<std::pair<std::string, std::string>> corrupt = {
      {"empty", ""},
      {"text", "this is not a protobuf\n"},
      {"truncated", model.substr(0, model.size() / 2)},
      {"garbage", std::string(4096, '\xff')},
  };
  for (const auto& [name, bytes] : corrupt) {
    const std::string path = TempPath(name + ".model");
    std::ofstream(path, std::ios::binary) << bytes;
    auto tok = Tokenizer::Load(path);
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kDataLoss) << name << ": " << tok.status();
  }
}

}  // namespace
}  // namespace supra
