#include "engine/tokenizer/incremental_decoder.h"

#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/tokenizer/test_tokenizer.h"

namespace supra {
namespace {

using ::supra::testing::TestTokenizer;

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

std::vector<int32_t> Concat(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  std::vector<int32_t> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

std::string DecodeOrDie(const std::vector<int32_t>& ids) {
  absl::StatusOr<std::string> text = TestTokenizer().Decode(ids);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : std::string();
}

// Whether `s` is well-formed UTF-8 (no truncated or stray sequences).
bool IsValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t j = 1; j < len; ++j) {
      if ((static_cast<unsigned char>(s[i + j]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

struct Streamed {
  std::string text;                 // all deltas, in order
  std::vector<std::string> deltas;  // one per Step, then Flush's
  size_t max_window = 0;
};

Streamed Stream(const std::vector<int32_t>& history, const std::vector<int32_t>& reply) {
  Streamed out;
  absl::StatusOr<IncrementalDecoder> decoder = IncrementalDecoder::Create(TestTokenizer(), history);
  EXPECT_TRUE(decoder.ok()) << decoder.status();
  if (!decoder.ok()) return out;
  for (const int32_t token : reply) {
    absl::StatusOr<std::string> delta = decoder->Step(token);
    EXPECT_TRUE(delta.ok()) << delta.status();
    if (!delta.ok()) return out;
    out.deltas.push_back(*delta);
    out.text += *delta;
    out.max_window = std::max(out.max_window, decoder->window_size());
  }
  absl::StatusOr<std::string> rest = decoder->Flush();
  EXPECT_TRUE(rest.ok()) << rest.status();
  if (rest.ok()) {
    out.deltas.push_back(*rest);
    out.text += *rest;
  }
  return out;
}

// Decode(history + reply) minus its prefix Decode(history); fails the test
// when that is not a prefix.
std::string ExpectedReplyText(const std::vector<int32_t>& history, const std::vector<int32_t>& reply) {
  const std::string before = DecodeOrDie(history);
  const std::string all = DecodeOrDie(Concat(history, reply));
  EXPECT_EQ(all.compare(0, before.size(), before), 0) << "'" << before << "' is not a prefix of '" << all << "'";
  return all.substr(std::min(before.size(), all.size()));
}

// Whether `ids` holds two or more consecutive byte pieces (a character that
// only byte fallback can spell).
bool HasMultiByteFallback(const std::vector<int32_t>& ids) {
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    if (TestTokenizer().IsByte(ids[i]) && TestTokenizer().IsByte(ids[i + 1])) return true;
  }
  return false;
}

const std::vector<std::string>& Texts() {
  static const std::vector<std::string> texts = {
      "Hello world.",
      "The quick brown fox jumps over the lazy dog.",
      "Emoji: \xF0\x9F\x98\x80 and \xF0\x9F\xA6\x9C, a parrot!",                   // 😀 🦜
      "\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x81\xAF\xE5\xA4\xA7\xE3\x81\x8D\xE3\x81\x84",  // 東京は大きい
      "Caf\xC3\xA9 na\xC3\xAFve r\xC3\xA9sum\xC3\xA9",
      "  two leading spaces and   gaps",
      "\xF0\x9D\x84\x9E clef \xE2\x82\xAC euro",  // 𝄞 €
      "x",
      "numbers 12345 and punctuation ?!;:",
  };
  return texts;
}

TEST(IncrementalDecoderTest, FixtureSpellsCharactersWithSeveralBytePieces) {
  int with_bytes = 0;
  for (const std::string& text : Texts()) with_bytes += HasMultiByteFallback(TestTokenizer().Encode(text));
  EXPECT_GE(with_bytes, 3) << "the fixture model should need byte fallback for emoji and CJK";
}

TEST(IncrementalDecoderTest, WholeTextFromEmptyHistory) {
  for (const std::string& text : Texts()) {
    SCOPED_TRACE(text);
    const std::vector<int32_t> ids = TestTokenizer().Encode(text);
    const Streamed s = Stream({}, ids);
    EXPECT_EQ(s.text, DecodeOrDie(ids));
    // Every delta is whole UTF-8: multi-byte characters never come out split.
    for (const std::string& d : s.deltas) {
      EXPECT_TRUE(IsValidUtf8(d)) << "delta splits a character";
      EXPECT_EQ(d.find(kReplacement), std::string::npos);
    }
  }
}

// Every golden text streams to its golden decode, alone and as a reply.
TEST(IncrementalDecoderTest, GoldenTexts) {
  const Tokenizer& tok = TestTokenizer();
  std::ifstream in(::supra::testing::TokenizerDataPath("golden.json"));
  const nlohmann::json golden = nlohmann::json::parse(in);
  const std::vector<int32_t> history = Concat({tok.bos_id()}, tok.Encode("Question?"));
  for (const nlohmann::json& c : golden.at("cases")) {
    SCOPED_TRACE(c.at("text").get<std::string>());
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(Stream({}, ids).text, c.at("decoded").get<std::string>());
    EXPECT_EQ(Stream(history, ids).text, ExpectedReplyText(history, ids));
  }
}

TEST(IncrementalDecoderTest, ResumedReplyKeepsItsLeadingSpace) {
  const Tokenizer& tok = TestTokenizer();
  // Each turn is tokenised on its own (supra-model.md §5).
  const std::vector<int32_t> history = Concat({tok.bos_id()}, tok.Encode("Hello there."));
  for (const std::string& reply_text : Texts()) {
    SCOPED_TRACE(reply_text);
    const std::vector<int32_t> reply = tok.Encode(reply_text);
    const std::string expected = ExpectedReplyText(history, reply);
    EXPECT_EQ(expected[0], ' ') << "the reply's first piece starts with the SentencePiece space";
    EXPECT_EQ(Stream(history, reply).text, expected);
    // The same after an end-of-turn token.
    const std::vector<int32_t> closed = Concat(history, {tok.eos_id()});
    EXPECT_EQ(Stream(closed, reply).text, ExpectedReplyText(closed, reply));
  }
}

// A long conversation split at every kind of place: inside multi-byte
// characters, right after BOS/EOS, at the very start.
TEST(IncrementalDecoderTest, RandomSplitsReassembleExactly) {
  const Tokenizer& tok = TestTokenizer();
  std::vector<int32_t> all = {tok.bos_id()};
  std::mt19937 rng(1234);
  for (int turn = 0; turn < 40; ++turn) {
    const std::string& text = Texts()[rng() % Texts().size()];
    const std::vector<int32_t> ids = tok.Encode(text);
    all.insert(all.end(), ids.begin(), ids.end());
    if (rng() % 3 == 0) all.push_back(tok.eos_id());
  }
  int splits_inside_bytes = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const size_t split = rng() % all.size();
    const size_t end = split + rng() % (all.size() - split + 1);
    const std::vector<int32_t> history(all.begin(), all.begin() + split);
    const std::vector<int32_t> reply(all.begin() + split, all.begin() + end);
    SCOPED_TRACE(::testing::Message() << "split " << split << " end " << end);
    const std::string before = DecodeOrDie(history);
    const std::string whole = DecodeOrDie(Concat(history, reply));
    const Streamed s = Stream(history, reply);
    if (whole.compare(0, before.size(), before) == 0) {
      EXPECT_EQ(s.text, whole.substr(before.size()));
    } else {
      // The reply starts with the bytes that complete a character the history
      // left incomplete: the history's text stays as emitted, the orphan
      // continuation bytes are U+FFFD, and what follows is exact.
      ++splits_inside_bytes;
      ASSERT_TRUE(tok.IsByte(all[split - 1]) && tok.IsByte(all[split]));
      EXPECT_EQ(s.text.rfind(kReplacement, 0), 0u) << s.text;
    }
    EXPECT_LE(s.max_window, 32u) << "the decode window must stay short";
  }
  EXPECT_GT(splits_inside_bytes, 0) << "no split landed inside a character; the test lost coverage";
}

// Random token ids, heavy in byte pieces: invalid UTF-8, stray trail bytes,
// truncated sequences, control tokens in the middle of byte runs.
TEST(IncrementalDecoderTest, RandomIdsMatchDecode) {
  const Tokenizer& tok = TestTokenizer();
  std::vector<int32_t> byte_ids;
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    if (tok.IsByte(id) && *tok.ByteValue(id) >= 0x80) byte_ids.push_back(id);
  }
  ASSERT_FALSE(byte_ids.empty());
  std::mt19937 rng(99);
  int checked = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<int32_t> ids(1 + rng() % 24);
    for (int32_t& id : ids) {
      const uint32_t kind = rng() % 10;
      id = kind < 6   ? byte_ids[rng() % byte_ids.size()]
           : kind < 7 ? (rng() % 2 ? tok.eos_id() : tok.bos_id())
                      : static_cast<int32_t>(rng() % tok.vocab_size());
    }
    const size_t split = rng() % (ids.size() + 1);
    const std::vector<int32_t> history(ids.begin(), ids.begin() + split);
    const std::vector<int32_t> reply(ids.begin() + split, ids.end());
    const std::string before = DecodeOrDie(history);
    const std::string whole = DecodeOrDie(ids);
    if (whole.compare(0, before.size(), before) != 0) continue;  // covered by RandomSplits
    ++checked;
    EXPECT_EQ(Stream(history, reply).text, whole.substr(before.size())) << "trial " << trial;
  }
  EXPECT_GT(checked, 300);
}

// An emoji spelled by four byte pieces comes out in one delta, on its last byte.
TEST(IncrementalDecoderTest, HoldsIncompleteCharacterUntilItsLastByte) {
  const Tokenizer& tok = TestTokenizer();
  const std::string parrot = "\xF0\x9F\xA6\x9C";  // 🦜
  std::vector<int32_t> bytes;
  for (const char c : parrot) {
    for (int32_t id = 0; id < tok.vocab_size(); ++id) {
      if (tok.ByteValue(id) == static_cast<uint8_t>(c)) bytes.push_back(id);
    }
  }
  ASSERT_EQ(bytes.size(), 4u);
  const std::vector<int32_t> history = tok.Encode("look");
  absl::StatusOr<IncrementalDecoder> decoder = IncrementalDecoder::Create(tok, history);
  ASSERT_TRUE(decoder.ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*decoder->Step(bytes[i]), "");
  EXPECT_EQ(*decoder->Step(bytes[3]), parrot);
  EXPECT_EQ(*decoder->Flush(), "");

  // Cut short, the held bytes come out at Flush as SentencePiece decodes them.
  decoder = IncrementalDecoder::Create(tok, history);
  ASSERT_TRUE(decoder.ok());
  EXPECT_EQ(*decoder->Step(bytes[0]), "");
  EXPECT_EQ(*decoder->Step(bytes[1]), "");
  EXPECT_EQ(*decoder->Flush(), std::string(kReplacement) + kReplacement);
}

// A history cut inside a character (a reply stopped by a token limit) stays
// as it was emitted; the next reply's text follows it.
TEST(IncrementalDecoderTest, HistoryEndingInsideACharacterIsFinal) {
  const Tokenizer& tok = TestTokenizer();
  const std::vector<int32_t> emoji = tok.Encode("\xF0\x9F\xA6\x9C");
  ASSERT_TRUE(HasMultiByteFallback(emoji));
  std::vector<int32_t> history = tok.Encode("cut");
  history.insert(history.end(), emoji.begin(), emoji.end() - 1);
  const std::vector<int32_t> reply = tok.Encode("next words");
  const std::string expected = ExpectedReplyText(history, reply);
  EXPECT_EQ(expected, " next words");
  EXPECT_EQ(Stream(history, reply).text, expected);
}

TEST(IncrementalDecoderTest, WindowStaysShortOverALongStream) {
  const Tokenizer& tok = TestTokenizer();
  std::vector<int32_t> reply;
  for (int i = 0; i < 200; ++i) {
    const std::vector<int32_t> ids = tok.Encode(Texts()[i % Texts().size()]);
    reply.insert(reply.end(), ids.begin(), ids.end());
  }
  const std::vector<int32_t> history = Concat({tok.bos_id()}, tok.Encode("start"));
  const Streamed s = Stream(history, reply);
  EXPECT_EQ(s.text, ExpectedReplyText(history, reply));
  EXPECT_LE(s.max_window, 16u);
}

TEST(IncrementalDecoderTest, Errors) {
  const Tokenizer& tok = TestTokenizer();
  absl::StatusOr<IncrementalDecoder> decoder = IncrementalDecoder::Create(tok, {});
  ASSERT_TRUE(decoder.ok());
  EXPECT_EQ(decoder->Step(tok.vocab_size()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(decoder->Step(-1).status().code(), absl::StatusCode::kInvalidArgument);
  // A rejected id leaves the decoder as it was.
  const std::vector<int32_t> ids = tok.Encode("still fine");
  std::string text;
  for (const int32_t id : ids) text += *decoder->Step(id);
  text += *decoder->Flush();
  EXPECT_EQ(text, "still fine");
  EXPECT_EQ(decoder->Step(ids[0]).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(decoder->Flush().status().code(), absl::StatusCode::kFailedPrecondition);

  EXPECT_EQ(IncrementalDecoder::Create(tok, std::vector<int32_t>{5, tok.vocab_size()}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace supra
