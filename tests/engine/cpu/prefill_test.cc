// Recurrent-model invariants of the CPU backend: chunked prefill equals
// token-by-token decode for any chunk size, and a prompt fed in several turns
// equals the prompt fed at once.
#include <ostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace supra::testing {
namespace {

struct ModelCase {
  std::string name;
  ModelConfig config;
  int prompt_length;
};
void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

std::vector<ModelCase> ModelCases() {
  std::vector<ModelCase> cases;
  cases.push_back({"mha", TinyConfig(32, 2, 4, 4, 8, 48, 64), 300});
  cases.push_back({"gqa", TinyConfig(32, 2, 4, 2, 12, 48, 64), 300});
  ModelConfig qk = TinyConfig(32, 2, 4, 2, 8, 48, 64);
  qk.apply_qk_norm = true;
  qk.use_retnet_slopes = true;
  cases.push_back({"gqa_qknorm", qk, 300});
  cases.push_back({"h6", TinyConfig(48, 2, 6, 3, 8, 48, 64), 300});
  ModelConfig nodecay = TinyConfig(32, 2, 4, 4, 8, 48, 64);
  nodecay.use_decay = false;
  cases.push_back({"nodecay", nodecay, 300});
  ModelConfig tied = TinyConfig(32, 2, 4, 4, 8, 48, 64);
  tied.weight_tying = true;
  tied.post_embed_norm = true;
  tied.decay_start = 0.3;
  cases.push_back({"tied_post_embed_norm_decay_start", tied, 300});
  // The real 32-head slopes (γ from 0.43 to 0.996) over three full chunks of
  // 256 tokens and a partial one.
  cases.push_back({"h32", TinyConfig(128, 1, 32, 8, 4, 64, 64), 800});
  return cases;
}

class PrefillTest : public ::testing::TestWithParam<ModelCase> {};

TEST_P(PrefillTest, ChunkedPrefillEqualsTokenByTokenDecode) {
  const ModelCase& c = GetParam();
  auto backend = MakeBackend(c.config, 11);
  ASSERT_NE(backend, nullptr);
  const int vocab = c.config.vocab_size;
  const std::vector<int32_t> prompt = RandomTokens(c.prompt_length, vocab, 12);
  const int64_t start = 5;  // not at 0: the rotary angles must follow the start position
  const std::vector<float> ref_logits = DecodeOneByOne(*backend, 0, prompt, start);
  const std::vector<float> ref_state = ReadState(*backend, 0);
  for (int chunk : {1, 7, 64, 256, c.prompt_length}) {
    ASSERT_TRUE(backend->ResetSlot(1).ok());
    const std::vector<float> logits = PrefillAll(*backend, 1, prompt, start, chunk);
    EXPECT_LE(WorstRowRelDiff(logits, ref_logits, vocab), 1e-5) << "chunk " << chunk;
    EXPECT_LE(RelMaxDiff(ReadState(*backend, 1), ref_state), 1e-5) << "chunk " << chunk;
  }
}

TEST_P(PrefillTest, PromptInThreeTurnsEqualsPromptAtOnce) {
  const ModelCase& c = GetParam();
  auto backend = MakeBackend(c.config, 21);
  ASSERT_NE(backend, nullptr);
  const int vocab = c.config.vocab_size;
  const std::vector<int32_t> prompt = RandomTokens(c.prompt_length, vocab, 22);
  const std::vector<float> once = PrefillAll(*backend, 0, prompt, 0, 64);
  const std::vector<float> once_state = ReadState(*backend, 0);

  // Turns of uneven lengths, each continuing the slot at its start position,
  // each with its own chunk size.
  const absl::Span<const int32_t> all(prompt);
  const size_t a = prompt.size() / 3 + 1, b = 2 * prompt.size() / 3 + 5;
  std::vector<float> turns = PrefillAll(*backend, 3, all.subspan(0, a), 0, 64);
  const std::vector<float> second = PrefillAll(*backend, 3, all.subspan(a, b - a), a, 13);
  const std::vector<float> third = PrefillAll(*backend, 3, all.subspan(b), b, 256);
  turns.insert(turns.end(), second.begin(), second.end());
  turns.insert(turns.end(), third.begin(), third.end());
  EXPECT_LE(WorstRowRelDiff(turns, once, vocab), 1e-5);
  EXPECT_LE(RelMaxDiff(ReadState(*backend, 3), once_state), 1e-5);
}

TEST_P(PrefillTest, LastOnlyLogitsAreTheLastRowOfAll) {
  const ModelCase& c = GetParam();
  auto backend = MakeBackend(c.config, 31);
  ASSERT_NE(backend, nullptr);
  const int vocab = c.config.vocab_size;
  const std::vector<int32_t> prompt = RandomTokens(70, vocab, 32);
  const std::vector<float> all = PrefillAll(*backend, 0, prompt, 0, 16);
  std::vector<float> last(vocab);
  const PrefillSequence sequence{1, prompt, 0};
  ASSERT_TRUE(backend->Prefill({&sequence, 1}, 16, LogitsOutput::kLastOnly, absl::MakeSpan(last)).ok());
  EXPECT_EQ(last, std::vector<float>(all.end() - vocab, all.end()));
  EXPECT_EQ(ReadState(*backend, 0), ReadState(*backend, 1));
}

INSTANTIATE_TEST_SUITE_P(Models, PrefillTest, ::testing::ValuesIn(ModelCases()),
                         [](const ::testing::TestParamInfo<ModelCase>& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace supra::testing
