// A batch of different sequences gives each sequence what it gets alone, in
// Prefill and in Decode (greedy output under a busy batch == alone). The CPU
// backend computes every row with the same instruction sequence whatever the
// batch and the thread count (engine/cpu/ops.h), so "equal" here is bitwise:
// the batched backend runs two threads, the one alone a single thread.
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace supra::testing {
namespace {

constexpr int kSlots = 16;

ModelConfig BatchConfig() { return TinyConfig(48, 2, 6, 3, 8, 64, 96); }  // GQA, 6 heads

struct Sequence {
  int32_t slot;
  int64_t start;                // position of the first prompt token
  std::vector<int32_t> prefix;  // fed first, alone, so the slot carries a state
  std::vector<int32_t> prompt;  // then fed batched with the others
};

std::vector<Sequence> Sequences(int vocab) {
  return {
      {13, 0, RandomTokens(9, vocab, 1), RandomTokens(5, vocab, 2)},
      {0, 3, RandomTokens(1, vocab, 3), RandomTokens(130, vocab, 4)},
      {7, 100, RandomTokens(40, vocab, 5), RandomTokens(37, vocab, 6)},
      {15, 2000, RandomTokens(3, vocab, 7), RandomTokens(300, vocab, 8)},
  };
}

TEST(BatchTest, PrefillBatchEqualsEachAlone) {
  const ModelConfig config = BatchConfig();
  auto batched = MakeBackend(config, 5, kSlots, 2);
  auto alone = MakeBackend(config, 5, kSlots, 1);
  ASSERT_NE(batched, nullptr);
  ASSERT_NE(alone, nullptr);
  const int vocab = config.vocab_size;
  const std::vector<Sequence> seqs = Sequences(vocab);
  std::vector<PrefillSequence> batch;
  size_t total = 0;
  for (const Sequence& s : seqs) {
    PrefillAll(*batched, s.slot, s.prefix, s.start, 8);
    batch.push_back(PrefillSequence{s.slot, s.prompt, s.start + static_cast<int64_t>(s.prefix.size())});
    total += s.prompt.size();
  }
  for (const LogitsOutput output : {LogitsOutput::kAll, LogitsOutput::kLastOnly}) {
    // Every sequence starts again from its prefix state.
    std::vector<std::vector<float>> saved;
    for (const Sequence& s : seqs) saved.push_back(ReadState(*batched, s.slot));
    std::vector<float> logits((output == LogitsOutput::kAll ? total : seqs.size()) * vocab);
    ASSERT_TRUE(batched->Prefill(batch, 64, output, absl::MakeSpan(logits)).ok());
    size_t row = 0;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const Sequence& s = seqs[i];
      ASSERT_TRUE(alone->ResetSlot(s.slot).ok());
      PrefillAll(*alone, s.slot, s.prefix, s.start, 8);
      const std::vector<float> expected = PrefillAll(*alone, s.slot, s.prompt, batch[i].start_position, 64);
      if (output == LogitsOutput::kAll) {
        EXPECT_EQ(std::vector<float>(logits.begin() + row * vocab, logits.begin() + row * vocab + expected.size()),
                  expected)
            << i;
        row += s.prompt.size();
      } else {
        EXPECT_EQ(std::vector<float>(logits.begin() + i * vocab, logits.begin() + (i + 1) * vocab),
                  std::vector<float>(expected.end() - vocab, expected.end()))
            << i;
      }
      EXPECT_EQ(ReadState(*batched, s.slot), ReadState(*alone, s.slot)) << i;
      ASSERT_TRUE(batched->WriteState(s.slot, saved[i]).ok());
    }
  }
}

TEST(BatchTest, GreedyDecodeInABusyBatchEqualsAlone) {
  const ModelConfig config = BatchConfig();
  auto batched = MakeBackend(config, 6, kSlots, 2);
  auto alone = MakeBackend(config, 6, kSlots, 1);
  ASSERT_NE(batched, nullptr);
  ASSERT_NE(alone, nullptr);
  const int vocab = config.vocab_size;
  const std::vector<Sequence> seqs = Sequences(vocab);
  const std::vector<int> steps = {24, 10, 24, 17};  // sequences leave the batch at different times

  // Alone: prefill, then greedy one sequence at a time.
  std::vector<std::vector<int32_t>> expected;
  std::vector<int32_t> first_token;
  std::vector<int64_t> next_position;
  for (const Sequence& s : seqs) {
    std::vector<int32_t> tokens = s.prefix;
    tokens.insert(tokens.end(), s.prompt.begin(), s.prompt.end());
    const std::vector<float> logits = PrefillAll(*alone, s.slot, tokens, s.start, 32);
    first_token.push_back(Argmax(absl::MakeSpan(logits).subspan(logits.size() - vocab)));
    next_position.push_back(s.start + static_cast<int64_t>(tokens.size()));
    expected.push_back(GreedyAlone(*alone, s.slot, first_token.back(), next_position.back(), steps[expected.size()]));
    EXPECT_GE(DistinctCount(expected.back()), std::min(5, steps[expected.size() - 1] / 3))
        << "degenerate continuation for sequence " << expected.size() - 1;
  }

  // Batched: one prefill of all sequences, then decode steps over all live ones.
  std::vector<std::vector<int32_t>> full(seqs.size());
  std::vector<PrefillSequence> prefill;
  for (size_t i = 0; i < seqs.size(); ++i) {
    full[i] = seqs[i].prefix;
    full[i].insert(full[i].end(), seqs[i].prompt.begin(), seqs[i].prompt.end());
    prefill.push_back(PrefillSequence{seqs[i].slot, full[i], seqs[i].start});
  }
  std::vector<float> last(seqs.size() * vocab);
  ASSERT_TRUE(batched->Prefill(prefill, 32, LogitsOutput::kLastOnly, absl::MakeSpan(last)).ok());
  std::vector<std::vector<int32_t>> got(seqs.size());
  std::vector<int32_t> token(seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) token[i] = Argmax(absl::MakeSpan(last).subspan(i * vocab, vocab));
  EXPECT_EQ(token, first_token);
  for (int step = 0; step < 24; ++step) {
    std::vector<int32_t> slots, tokens;
    std::vector<int64_t> positions;
    std::vector<size_t> who;
    for (size_t j = 0; j < seqs.size(); ++j) {
      const size_t i = seqs.size() - 1 - j;  // not in slot order
      if (step >= steps[i]) continue;
      slots.push_back(seqs[i].slot);
      tokens.push_back(token[i]);
      positions.push_back(next_position[i] + step);
      who.push_back(i);
    }
    std::vector<float> logits(slots.size() * vocab);
    ASSERT_TRUE(batched->Decode(DecodeBatch{slots, tokens, positions}, absl::MakeSpan(logits)).ok());
    for (size_t r = 0; r < who.size(); ++r) {
      token[who[r]] = Argmax(absl::MakeSpan(logits).subspan(r * vocab, vocab));
      got[who[r]].push_back(token[who[r]]);
    }
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    EXPECT_EQ(got[i], expected[i]) << "sequence " << i;
    EXPECT_EQ(ReadState(*batched, seqs[i].slot), ReadState(*alone, seqs[i].slot)) << i;
  }
}

}  // namespace
}  // namespace supra::testing
