// Shared fixture data for the tokenizer tests: the tiny BPE model with byte
// fallback committed under tests/data/tokenizer (bos 1, eos 2, unk 0).
#ifndef SUPRA_TESTS_ENGINE_TOKENIZER_TEST_TOKENIZER_H_
#define SUPRA_TESTS_ENGINE_TOKENIZER_TEST_TOKENIZER_H_

#include <cstdlib>
#include <memory>
#include <string>

#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace supra::testing {

inline std::string TokenizerDataPath(const std::string& name) {
  return std::string(SUPRA_TEST_DATA_DIR) + "/tokenizer/" + name;
}

// Loads tests/data/tokenizer/tokenizer.model once per process.
inline const Tokenizer& TestTokenizer() {
  static const Tokenizer* const tokenizer = [] {
    auto loaded = Tokenizer::Load(TokenizerDataPath("tokenizer.model"));
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.status();
      std::abort();
    }
    return loaded->release();
  }();
  return *tokenizer;
}

}  // namespace supra::testing

#endif  // SUPRA_TESTS_ENGINE_TOKENIZER_TEST_TOKENIZER_H_
