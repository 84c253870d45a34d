// Our SentencePiece reader, encoder and decoder (engine/tokenizer) against
// libsentencepiece itself, the oracle, on the committed test model, on
// variants of it (normalizer flags, user-defined and unused pieces, no byte
// fallback), on damaged copies of it, and on fixed, edge-case and seeded
// random inputs.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/tokenizer/sentencepiece_oracle.h"
#include "tests/engine/tokenizer/test_tokenizer.h"

namespace supra {
namespace {

using ::supra::testing::SentencePieceOracle;
using ::supra::testing::TokenizerDataPath;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Printable form of arbitrary bytes for failure messages.
std::string Escaped(std::string_view s) {
  std::string out;
  for (const char c : s.substr(0, 300)) {
    const auto b = static_cast<uint8_t>(c);
    if (b >= 0x20 && b < 0x7F && c != '\\') {
      out.push_back(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", b);
      out += buf;
    }
  }
  if (s.size() > 300) out += "...(" + std::to_string(s.size()) + " bytes)";
  return out;
}

// --- Protobuf wire format, to build model variants. Appending a field to a
// serialized message overrides a scalar and merges a sub-message, in both
// parsers, so a variant is the original bytes plus a few fields.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string VarintField(int field, uint64_t v) { return Varint(static_cast<uint64_t>(field) << 3) + Varint(v); }
std::string BytesField(int field, std::string_view bytes) {
  return Varint((static_cast<uint64_t>(field) << 3) | 2) + Varint(bytes.size()) + std::string(bytes);
}
std::string FloatField(int field, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof(bits));
  std::string out = Varint((static_cast<uint64_t>(field) << 3) | 5);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
  return out;
}
enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
std::string PieceField(std::string_view piece, float score, int type) {
  return BytesField(1, BytesField(1, piece) + FloatField(2, score) + VarintField(3, type));
}
std::string TrainerField(const std::string& fields) { return BytesField(2, fields); }
std::string NormalizerField(const std::string& fields) { return BytesField(3, fields); }

// --- Inputs.
std::vector<std::string> FixedStrings() {
  std::vector<std::string> texts = {
      // The existing tests' strings.
      "Hello there.",
      "Hello world.",
      "Question?",
      "The quick brown fox jumps over the lazy dog.",
      "  two leading spaces and   gaps",
      " end ",
      " next words",
      "next words",
      "split ",
      "trial ",
      "still fine",
      "Caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9",
      "Emoji: \xF0\x9F\x98\x80 and \xF0\x9F\xA6\x9C, a parrot!",
      "\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x81\xAF\xE5\xA4\xA7\xE3\x81\x8D\xE3\x81\x84",
      "\xF0\x9D\x84\x9E clef \xE2\x82\xAC euro",
      "\xF0\x9F\xA6\x9C",
      "numbers 12345 and punctuation ?!;:",
      "x",
      "look",
      "cut",
      "start",
      "ab\xff\xfe"
      "cd\xe2\x82",
      // Whitespace.
      "",
      " ",
      "  ",
      "   ",
      "\t",
      "\n",
      "\r\n",
      " \n ",
      "\n\n\n",
      "a  b",
      "a   b   c",
      " a",
      "a ",
      "  a  ",
      "\ta\t",
      "line1\nline2\n",
      "tab\there",
      " \t \n ",
      "\xC2\xA0",
      "\xE3\x80\x80ideographic space",
      // Digits and punctuation.
      "0",
      "0123456789",
      "3.14159 and 2,718",
      "12345678901234567890",
      "1 2 3 4 5",
      "...",
      "!!!???",
      "a-b_c.d/e\\f",
      "<s>",
      "</s>",
      "<unk>",
      "<0x41>",
      "<pad>",
      "<s>hello</s>",
      // Scripts, emoji, byte fallback.
      "\xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7",
      "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9\xE3\x83\x88",
      "caf\xC3\xA9 na\xC3\xAFve \xC3\x85ngstr\xC3\xB6m",
      "\xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC",
      "\xD0\xA0\xD1\x83\xD1\x81\xD1\x81\xD0\xBA\xD0\xB8\xD0\xB9",
      "\xD7\xA2\xD7\x91\xD7\xA8\xD7\x99\xD7\xAA",
      "\xF0\x90\x8D\x88 gothic",
      "\xF4\x8F\xBF\xBF max code point",
      "\xEE\x80\x80 private use",
      // SentencePiece's own symbols as text.
      "\xE2\x96\x81",
      "\xE2\x96\x81\xE2\x96\x81",
      "a\xE2\x96\x81"
      "b",
      " \xE2\x96\x81 ",
      "\xE2\x96\x81hello",
      "hello\xE2\x96\x81",
      "\xEF\xBF\xBD",
      "\xE2\x81\x87",
      // Malformed UTF-8.
      "\xff",
      "\xfe\xff",
      "\x80",
      "\x80\x80",
      "\xc3",
      "\xc3(",
      "a\xc3",
      "\xe2\x82",
      "\xe2\x28\xa1",
      "\xf0\x90\x80",
      "\xf0\x90\x80 x",
      "\xed\xa0\x80",
      "\xc0\xaf",
      "\xc1\xbf",
      "\xe0\x80\xaf",
      "\xf4\x90\x80\x80",
      "\xf8\x88\x80\x80\x80",
      " \xff ",
      "\xff\xe2\x96\x81",
      std::string("a\0b", 3),
      std::string("\0", 1),
      std::string(" \0 ", 3),
  };
  // Long inputs.
  std::string pangrams;
  for (int i = 0; i < 300; ++i) pangrams += "The quick brown fox jumps over the lazy dog. ";
  texts.push_back(pangrams);
  texts.push_back(std::string(5000, 'a'));
  texts.push_back(std::string(3000, ' ') + "x" + std::string(3000, ' '));
  std::string mixed;
  for (int i = 0; i < 500; ++i) mixed += "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80 \xff 12 ";
  texts.push_back(mixed);
  // golden.json's texts.
  std::ifstream in(TokenizerDataPath("golden.json"));
  const nlohmann::json golden = nlohmann::json::parse(in);
  for (const nlohmann::json& c : golden.at("cases")) texts.push_back(c.at("text").get<std::string>());
  return texts;
}

// Random strings from fragments that exercise every path: ASCII, spaces and
// control whitespace, digits, multi-byte characters, emoji, the "▁" and U+FFFD
// characters, malformed bytes, NUL, and whole vocabulary pieces (so that long
// merges happen).
std::vector<std::string> RandomStrings(int count, uint32_t seed, const std::vector<std::string>& vocab_words) {
  static const std::vector<std::string> kFragments = {"a",
                                                      "e",
                                                      "t",
                                                      "h",
                                                      "s",
                                                      "n",
                                                      "Z",
                                                      "q",
                                                      "x",
                                                      " ",
                                                      " ",
                                                      " ",
                                                      "  ",
                                                      "\n",
                                                      "\t",
                                                      "\r",
                                                      ".",
                                                      ",",
                                                      "!",
                                                      "?",
                                                      "'",
                                                      "-",
                                                      "0",
                                                      "1",
                                                      "7",
                                                      "9",
                                                      "42",
                                                      "\xC3\xA9",
                                                      "\xC3\xBC",
                                                      "\xC3\xB1",
                                                      "\xC3\x85",
                                                      "\xCE\xA9",
                                                      "\xD0\x96",
                                                      "\xE6\x97\xA5",
                                                      "\xE6\x9C\xAC",
                                                      "\xE4\xB8\xAD",
                                                      "\xE9\xBE\x98",
                                                      "\xE2\x82\xAC",
                                                      "\xF0\x9F\x98\x80",
                                                      "\xF0\x9F\x91\x8D",
                                                      "\xF0\x9F\x8F\xBD",
                                                      "\xF0\x9D\x84\x9E",
                                                      "\xE2\x96\x81",
                                                      "\xEF\xBF\xBD",
                                                      "\xC2\xA0",
                                                      "\xff",
                                                      "\xfe",
                                                      "\x80",
                                                      "\xc3",
                                                      "\xe2\x82",
                                                      "\xf0\x9f",
                                                      "\xed\xa0\x80",
                                                      "\xc0\xaf",
                                                      std::string("\0", 1),
                                                      "<s>",
                                                      "<0x41>"};
  std::mt19937 rng(seed);
  std::vector<std::string> out;
  out.reserve(count);
  for (int i = 0; i < count; ++i) {
    const int length = std::uniform_int_distribution<int>(0, 24)(rng);
    std::string s;
    for (int j = 0; j < length; ++j) {
      if (!vocab_words.empty() && rng() % 2 == 0) {
        s += vocab_words[rng() % vocab_words.size()];
      } else {
        s += kFragments[rng() % kFragments.size()];
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Vocabulary pieces as text ("▁the" -> " the").
std::vector<std::string> VocabWords(const SentencePieceOracle& oracle) {
  std::vector<std::string> words;
  for (int id = 0; id < oracle.vocab_size(); ++id) {
    if (oracle.IsByte(id) || oracle.IsControl(id) || id == oracle.unk_id()) continue;
    std::string piece = oracle.IdToPiece(id);
    std::string word;
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xE2\x96\x81") == 0) {
        word.push_back(' ');
        i += 3;
      } else {
        word.push_back(piece[i++]);
      }
    }
    words.push_back(word);
  }
  return words;
}

// Random id sequences: byte pieces (often whole UTF-8 characters, often
// not), control and unknown ids, and any id.
std::vector<std::vector<int32_t>> RandomIdSequences(int count, uint32_t seed, const SentencePieceOracle& oracle) {
  std::vector<int32_t> byte_ids, special_ids;
  for (int id = 0; id < oracle.vocab_size(); ++id) {
    if (oracle.IsByte(id)) byte_ids.push_back(id);
    if (oracle.IsControl(id) || id == oracle.unk_id()) special_ids.push_back(id);
  }
  // Short sequences over a pool of the ids whose neighbours matter most: the
  // leading-space rule and byte runs ("▁" alone, pieces with and without a
  // leading "▁", control, unknown, bytes of "▁", of ' ' and of a CJK
  // character).
  std::vector<int32_t> pool = special_ids;
  int with_space = 0;
  int without_space = 0;
  for (int id = 0; id < oracle.vocab_size(); ++id) {
    const std::string piece = oracle.IdToPiece(id);
    if (oracle.IsByte(id)) {
      for (const char* b : {"<0x20>", "<0xE2>", "<0x96>", "<0x81>", "<0xE6>", "<0x97>", "<0xA5>", "<0xFF>"}) {
        if (piece == b) pool.push_back(id);
      }
    } else if (oracle.IsControl(id) || id == oracle.unk_id()) {
      continue;
    } else if (piece == "\xE2\x96\x81" || piece == "\xE2\x96\x81\xE2\x96\x81") {
      pool.push_back(id);
    } else if (piece.rfind("\xE2\x96\x81", 0) == 0 && with_space < 3) {
      pool.push_back(id);
      ++with_space;
    } else if (piece.rfind("\xE2\x96\x81", 0) != 0 && without_space < 3) {
      pool.push_back(id);
      ++without_space;
    }
  }
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < count; ++i) {
    const int length = std::uniform_int_distribution<int>(0, 6)(rng);
    std::vector<int32_t> ids;
    for (int j = 0; j < length; ++j) ids.push_back(pool[rng() % pool.size()]);
    out.push_back(std::move(ids));
  }
  for (int i = 0; i < count; ++i) {
    const int length = std::uniform_int_distribution<int>(0, 30)(rng);
    std::vector<int32_t> ids;
    for (int j = 0; j < length; ++j) {
      const uint32_t kind = rng() % 8;
      if (kind < 3 && !byte_ids.empty()) {
        ids.push_back(byte_ids[rng() % byte_ids.size()]);
      } else if (kind == 3 && !special_ids.empty()) {
        ids.push_back(special_ids[rng() % special_ids.size()]);
      } else {
        ids.push_back(static_cast<int32_t>(rng() % oracle.vocab_size()));
      }
    }
    out.push_back(std::move(ids));
  }
  return out;
}

// --- Loading both sides.
struct Pair {
  std::unique_ptr<Tokenizer> ours;
  std::unique_ptr<SentencePieceOracle> oracle;
};

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  const std::string path = ::testing::TempDir() + "/supra_parity_" + name + ".model";
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

// Loads `bytes` with both; fails the test unless both accept it.
Pair LoadBoth(const std::string& name, const std::string& bytes) {
  Pair pair;
  std::string error;
  pair.oracle = SentencePieceOracle::FromSerialized(bytes, &error);
  EXPECT_NE(pair.oracle, nullptr) << name << ": libsentencepiece refuses it: " << error;
  const std::string path = WriteTemp(name, bytes);
  absl::StatusOr<std::unique_ptr<Tokenizer>> ours = Tokenizer::Load(path);
  std::filesystem::remove(path);
  EXPECT_TRUE(ours.ok()) << name << ": " << ours.status();
  if (ours.ok()) pair.ours = *std::move(ours);
  return pair;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadOurs(const std::string& name, const std::string& bytes) {
  const std::string path = WriteTemp(name, bytes);
  absl::StatusOr<std::unique_ptr<Tokenizer>> ours = Tokenizer::Load(path);
  std::filesystem::remove(path);
  return ours;
}

// --- Comparisons. Each returns the number of mismatches and reports the first
// few.
void ExpectSameVocabulary(const Tokenizer& ours, const SentencePieceOracle& oracle) {
  ASSERT_EQ(ours.vocab_size(), oracle.vocab_size());
  EXPECT_EQ(ours.bos_id(), oracle.bos_id());
  EXPECT_EQ(ours.eos_id(), oracle.eos_id());
  EXPECT_EQ(ours.unk_id(), oracle.unk_id());
  for (int32_t id = 0; id < ours.vocab_size(); ++id) {
    ASSERT_EQ(*ours.IdToPiece(id), oracle.IdToPiece(id)) << id;
    ASSERT_EQ(ours.IsByte(id), oracle.IsByte(id)) << id;
    ASSERT_EQ(ours.IsControl(id), oracle.IsControl(id)) << id;
  }
}

int CompareEncode(const Tokenizer& ours, const SentencePieceOracle& oracle, const std::vector<std::string>& texts) {
  int mismatches = 0;
  for (const std::string& text : texts) {
    bool ok = false;
    const std::vector<int32_t> want = oracle.Encode(text, &ok);
    const std::vector<int32_t> got = ours.Encode(text);
    if (got == want) continue;
    if (++mismatches <= 5) {
      ADD_FAILURE() << "Encode(\"" << Escaped(text) << "\") differs from libsentencepiece (ok=" << ok
                    << "): " << ::testing::PrintToString(got) << " vs " << ::testing::PrintToString(want);
    }
  }
  return mismatches;
}

int CompareDecode(const Tokenizer& ours, const SentencePieceOracle& oracle,
                  const std::vector<std::vector<int32_t>>& sequences) {
  int mismatches = 0;
  for (const std::vector<int32_t>& ids : sequences) {
    bool ok = false;
    const std::string want = oracle.Decode(ids, &ok);
    absl::StatusOr<std::string> got = ours.Decode(ids);
    if (ok && got.ok() && *got == want) continue;
    if (++mismatches <= 5) {
      ADD_FAILURE() << "Decode(" << ::testing::PrintToString(ids) << ") differs from libsentencepiece (ok=" << ok
                    << "): \"" << (got.ok() ? Escaped(*got) : got.status().ToString()) << "\" vs \"" << Escaped(want)
                    << "\"";
    }
  }
  return mismatches;
}

// Encode, Decode of the encoding, and Decode of random ids, for one model.
void ExpectParity(const std::string& name, const Pair& pair, int random_strings, int random_sequences, uint32_t seed,
                  const std::vector<std::string>& extra_texts = {}) {
  SCOPED_TRACE(name);
  ASSERT_NE(pair.ours, nullptr);
  ASSERT_NE(pair.oracle, nullptr);
  ExpectSameVocabulary(*pair.ours, *pair.oracle);
  std::vector<std::string> texts = FixedStrings();
  const std::vector<std::string> random = RandomStrings(random_strings, seed, VocabWords(*pair.oracle));
  texts.insert(texts.end(), random.begin(), random.end());
  texts.insert(texts.end(), extra_texts.begin(), extra_texts.end());
  EXPECT_EQ(CompareEncode(*pair.ours, *pair.oracle, texts), 0) << "of " << texts.size() << " strings";

  std::vector<std::vector<int32_t>> sequences = RandomIdSequences(random_sequences, seed + 1, *pair.oracle);
  for (const std::string& text : texts) {
    bool ok = false;
    sequences.push_back(pair.oracle->Encode(text, &ok));
  }
  EXPECT_EQ(CompareDecode(*pair.ours, *pair.oracle, sequences), 0) << "of " << sequences.size() << " sequences";
}

const std::string& BaseModel() {
  static const std::string* const bytes = new std::string(ReadFile(TokenizerDataPath("tokenizer.model")));
  return *bytes;
}

// --- Tests.

TEST(SentencePieceParityTest, TestModel) {
  const Pair pair = LoadBoth("base", BaseModel());
  ExpectParity("tests/data/tokenizer/tokenizer.model", pair, 3000, 2000, 20260101);
}

// Every model under tests/data/models carries a tokenizer; each distinct one
// gets the same check (today they are all copies of the test model).
TEST(SentencePieceParityTest, EveryCommittedModel) {
  const std::string root = std::string(SUPRA_TEST_DATA_DIR) + "/models";
  std::set<std::string> seen = {BaseModel()};
  int models = 0;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    const std::filesystem::path path = entry.path() / "tokenizer.model";
    if (!std::filesystem::exists(path)) continue;
    ++models;
    const std::string bytes = ReadFile(path.string());
    if (!seen.insert(bytes).second) continue;
    ExpectParity(path.string(), LoadBoth(path.filename().string(), bytes), 500, 300, 7);
  }
  EXPECT_GT(models, 0);
}

// The normalizer and trainer flags our models do not use today but that
// SentencePiece BPE models may set.
TEST(SentencePieceParityTest, NormalizerAndTrainerFlags) {
  struct Variant {
    const char* name;
    std::string fields;
  };
  const std::vector<Variant> variants = {
      {"no_dummy_prefix", NormalizerField(VarintField(3, 0))},
      {"dummy_prefix", NormalizerField(VarintField(3, 1))},
      {"remove_extra_whitespaces", NormalizerField(VarintField(4, 1))},
      {"keep_extra_whitespaces", NormalizerField(VarintField(4, 0))},
      {"no_dummy_prefix_remove_extra", NormalizerField(VarintField(3, 0) + VarintField(4, 1))},
      {"no_escape_whitespaces", NormalizerField(VarintField(5, 0))},
      {"no_escape_remove_extra", NormalizerField(VarintField(5, 0) + VarintField(4, 1))},
      {"whitespace_as_suffix", TrainerField(VarintField(24, 1))},
      {"whitespace_as_suffix_remove_extra", TrainerField(VarintField(24, 1)) + NormalizerField(VarintField(4, 1))},
      {"unk_surface", TrainerField(BytesField(44, "<?>"))},
      {"empty_unk_surface", TrainerField(BytesField(44, ""))},
      {"training_only_fields", TrainerField(VarintField(25, 1) + VarintField(26, 1) + VarintField(40, 5))},
  };
  for (const Variant& v : variants) {
    ExpectParity(v.name, LoadBoth(v.name, BaseModel() + v.fields), 300, 200, 11);
  }
}

// User-defined pieces are matched whole and never merged; unused pieces are
// merged and then split back into the pieces they were made of.
TEST(SentencePieceParityTest, UserDefinedAndUnusedPieces) {
  std::string error;
  const auto base = SentencePieceOracle::FromSerialized(BaseModel(), &error);
  ASSERT_NE(base, nullptr) << error;
  std::set<std::string> vocab;
  std::vector<std::string> normal;
  for (int id = 0; id < base->vocab_size(); ++id) {
    vocab.insert(base->IdToPiece(id));
    if (!base->IsByte(id) && !base->IsControl(id) && id != base->unk_id()) normal.push_back(base->IdToPiece(id));
  }
  std::string user_defined;
  for (const char* piece :
       {"<|im_start|>", "<|im_end|>", "ab c", "\xE2\x96\x81\xE2\x96\x81", "xyz", " ", "12", "\xF0\x9F\x98\x80"}) {
    if (vocab.insert(piece).second) user_defined += PieceField(piece, 0.0f, kUserDefined);
  }
  // Concatenations of two existing pieces, scored above everything: unused
  // ones must be resegmented, normal ones kept.
  std::mt19937 rng(5);
  std::string unused, extra_normal;
  std::vector<std::string> added_texts;  // the added pieces as text, alone and in pairs
  for (int i = 0; i < 400; ++i) {
    const std::string piece = normal[rng() % normal.size()] + normal[rng() % normal.size()];
    if (!vocab.insert(piece).second) continue;
    added_texts.push_back(piece);
    if (added_texts.size() > 1) added_texts.push_back(piece + added_texts[added_texts.size() - 2]);
    const float score = static_cast<float>(rng() % 100) + 100.0f;
    if (i % 2 == 0) {
      unused += PieceField(piece, score, kUnused);
    } else {
      extra_normal += PieceField(piece, score, kNormal);
    }
  }
  ExpectParity("user_defined", LoadBoth("user_defined", BaseModel() + user_defined), 500, 200, 13);
  for (std::string& text : added_texts) {
    for (size_t pos = 0; (pos = text.find("\xE2\x96\x81", pos)) != std::string::npos;) text.replace(pos, 3, " ");
  }
  ExpectParity("unused", LoadBoth("unused", BaseModel() + unused), 1000, 200, 17, added_texts);
  ExpectParity("all_added", LoadBoth("all_added", BaseModel() + user_defined + unused + extra_normal), 1000, 200, 19,
               added_texts);
  // A one-character control piece: text containing it makes libsentencepiece's
  // Encode fail (no ids); ours must return no ids too.
  const std::string control = PieceField("Q", 0.0f, kControl) + PieceField("\xC2\xA7", 0.0f, kControl);
  ExpectParity("control_characters", LoadBoth("control_characters", BaseModel() + control), 300, 200, 37,
               {"Q", "aQb", " Q ", "\xC2\xA7", "x \xC2\xA7 y", "no control here"});
}

// A BPE model without byte fallback: characters outside the vocabulary become
// <unk>, a run of them one <unk>. Built from the test model's pieces minus
// the byte pieces.
TEST(SentencePieceParityTest, WithoutByteFallback) {
  std::string error;
  const auto base = SentencePieceOracle::FromSerialized(BaseModel(), &error);
  ASSERT_NE(base, nullptr) << error;
  std::string pieces;
  float score = 0.0f;
  for (int id = 0; id < base->vocab_size(); ++id) {
    if (base->IsByte(id)) continue;
    const std::string piece = base->IdToPiece(id);
    const int type = id == base->unk_id() ? kUnknown : base->IsControl(id) ? kControl : kNormal;
    pieces += PieceField(piece, type == kNormal ? score : 0.0f, type);
    score -= 1.0f;
  }
  const std::string model = pieces + TrainerField(VarintField(3, 2)) +
                            NormalizerField(BytesField(1, "identity") + VarintField(3, 1) + VarintField(4, 0));
  ExpectParity("no_byte_fallback", LoadBoth("no_byte_fallback", model), 1000, 300, 23);
  const std::string remove_extra = model + NormalizerField(VarintField(4, 1));
  ExpectParity("no_byte_fallback_remove_extra", LoadBoth("no_byte_fallback_remove_extra", remove_extra), 300, 100, 29);
}

// What we do not support is refused by name; what SentencePiece refuses we
// refuse as DATA_LOSS.
TEST(SentencePieceParityTest, UnsupportedAndInvalidModels) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> unigram =
      LoadOurs("unigram", BaseModel() + TrainerField(VarintField(3, 1)));
  EXPECT_EQ(unigram.status().code(), absl::StatusCode::kUnimplemented) << unigram.status();
  EXPECT_NE(unigram.status().message().find("Unigram"), std::string_view::npos) << unigram.status();

  absl::StatusOr<std::unique_ptr<Tokenizer>> nfkc = LoadOurs(
      "nfkc", BaseModel() + NormalizerField(BytesField(1, "nmt_nfkc") + BytesField(2, std::string(64, '\x01'))));
  EXPECT_EQ(nfkc.status().code(), absl::StatusCode::kUnimplemented) << nfkc.status();
  EXPECT_NE(nfkc.status().message().find("nmt_nfkc"), std::string_view::npos) << nfkc.status();

  absl::StatusOr<std::unique_ptr<Tokenizer>> denorm =
      LoadOurs("denorm", BaseModel() + BytesField(5, BytesField(2, std::string(64, '\x01'))));
  EXPECT_EQ(denorm.status().code(), absl::StatusCode::kUnimplemented) << denorm.status();

  const std::vector<std::pair<std::string, std::string>> invalid = {
      {"byte_pieces_without_byte_fallback", TrainerField(VarintField(35, 0))},
      {"duplicate_piece", PieceField("<unk>", 0.0f, kUnknown)},
      {"second_unknown", PieceField("<unk2>", 0.0f, kUnknown)},
      {"empty_piece", PieceField("", 0.0f, kNormal)},
      {"bad_byte_piece", PieceField("<0x4g>", 0.0f, kByte)},
  };
  for (const auto& [name, fields] : invalid) {
    std::string error;
    EXPECT_EQ(SentencePieceOracle::FromSerialized(BaseModel() + fields, &error), nullptr) << name;
    absl::StatusOr<std::unique_ptr<Tokenizer>> ours = LoadOurs(name, BaseModel() + fields);
    EXPECT_EQ(ours.status().code(), absl::StatusCode::kDataLoss) << name << ": " << ours.status();
  }
}

// Damaged files: where libsentencepiece refuses, so do we (DATA_LOSS, or
// UNIMPLEMENTED when the damage made a valid model we do not support); where
// we accept, libsentencepiece accepts too and encodes the same.
TEST(SentencePieceParityTest, DamagedModels) {
  const std::string& base = BaseModel();
  std::mt19937 rng(31);
  std::vector<std::string> texts = FixedStrings();
  texts.resize(40);
  int accepted = 0;
  int refused = 0;
  for (int i = 0; i < 300; ++i) {
    std::string bytes = base;
    if (i % 3 == 0) {
      bytes.resize(rng() % bytes.size());
    } else {
      for (int k = 0; k < 1 + i % 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng() & 0xFF);
    }
    std::string error;
    const auto oracle = SentencePieceOracle::FromSerialized(bytes, &error);
    absl::StatusOr<std::unique_ptr<Tokenizer>> ours = LoadOurs("damaged", bytes);
    SCOPED_TRACE(::testing::Message() << "damage " << i);
    if (oracle == nullptr) {
      ++refused;
      EXPECT_FALSE(ours.ok()) << "libsentencepiece refuses it: " << error;
      if (!ours.ok()) {
        EXPECT_TRUE(ours.status().code() == absl::StatusCode::kDataLoss ||
                    ours.status().code() == absl::StatusCode::kUnimplemented)
            << ours.status();
      }
      continue;
    }
    if (!ours.ok()) {
      EXPECT_EQ(ours.status().code(), absl::StatusCode::kUnimplemented) << ours.status();
      continue;
    }
    ++accepted;
    EXPECT_EQ(CompareEncode(**ours, *oracle, texts), 0);
  }
  std::printf("damaged models: %d accepted by both, %d refused by libsentencepiece\n", accepted, refused);
  EXPECT_GT(accepted, 0);
  EXPECT_GT(refused, 0);
}

}  // namespace
}  // namespace supra
