// Decay slopes and gammas (engine/model/decay.cc) against supra-model.md §3.8
// and against tests/data/golden/slopes.json.
#include "engine/model/decay.h"

#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/testing/random_model.h"

namespace supra {
namespace {

ModelConfig Heads(int h, std::optional<double> decay_start = std::nullopt) {
  ModelConfig c = testing::TinyConfig(8 * h, 1, h, h, 8, 16, 16);
  c.decay_start = decay_start;
  return c;
}

TEST(DecayTest, ThirtyTwoHeadsFollowTheClosedForm) {
  const std::vector<double> slopes = DecaySlopes(Heads(32));
  const std::vector<double> gammas = DecayGammas(Heads(32));
  ASSERT_EQ(slopes.size(), 32u);
  for (int h = 0; h < 32; ++h) {
    EXPECT_NEAR(slopes[h], std::exp2(-(h + 1) / 4.0), 1e-7) << h;
    EXPECT_NEAR(gammas[h], std::exp(-std::exp2(-(h + 1) / 4.0)), 1e-7) << h;
  }
  EXPECT_NEAR(gammas[0], 0.4313, 1e-4);
  EXPECT_NEAR(gammas[31], 0.9961, 1e-4);
}

TEST(DecayTest, NonPowerOfTwoHeadsTakeEveryOtherSlopeOfTheDoubleList) {
  // H = 6: the 4-head slopes 2^-2(h+1), then slopes 0 and 2 of the 8-head list 2^-(h+1).
  const std::vector<double> six = DecaySlopes(Heads(6));
  const std::vector<double> six_expected = {0.25, 0.0625, 0.015625, 0.00390625, 0.5, 0.125};
  ASSERT_EQ(six.size(), 6u);
  for (int h = 0; h < 6; ++h) EXPECT_NEAR(six[h], six_expected[h], 1e-12) << h;
  // H = 12: the 8-head slopes 2^-(h+1), then slopes 0, 2, 4, 6 of the 16-head list 2^-(h+1)/2.
  const std::vector<double> twelve = DecaySlopes(Heads(12));
  ASSERT_EQ(twelve.size(), 12u);
  for (int h = 0; h < 8; ++h) EXPECT_NEAR(twelve[h], std::exp2(-(h + 1)), 1e-12) << h;
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(twelve[8 + i], std::exp2(-(2 * i + 1) / 2.0), 1e-12) << i;
}

TEST(DecayTest, DecayStartSetsTheFirstSlopeOfThePowerOfTwoPart) {
  const std::vector<double> four = DecaySlopes(Heads(4, 0.3));
  for (int h = 0; h < 4; ++h) EXPECT_NEAR(four[h], 0.3 * std::pow(0.25, h), 1e-12) << h;
  // The appended slopes keep the default start.
  const std::vector<double> six = DecaySlopes(Heads(6, 0.3));
  ASSERT_EQ(six.size(), 6u);
  for (int h = 0; h < 4; ++h) EXPECT_NEAR(six[h], 0.3 * std::pow(0.25, h), 1e-12) << h;
  EXPECT_NEAR(six[4], 0.5, 1e-12);
  EXPECT_NEAR(six[5], 0.125, 1e-12);
}

TEST(DecayTest, RetNetAndNoDecay) {
  ModelConfig retnet = Heads(4);
  retnet.use_retnet_slopes = true;
  const std::vector<double> gammas = DecayGammas(retnet);
  for (int h = 0; h < 4; ++h) EXPECT_NEAR(gammas[h], 1 - std::exp2(-5 - h), 1e-15) << h;
  ModelConfig none = Heads(4);
  none.use_decay = false;
  for (double g : DecayGammas(none)) EXPECT_EQ(g, 1.0);
  for (double s : DecaySlopes(none)) EXPECT_EQ(s, 0.0);
}

TEST(DecayTest, MatchesTheGoldenFile) {
  std::ifstream in(std::string(SUPRA_TEST_DATA_DIR) + "/golden/slopes.json");
  if (!in) GTEST_SKIP() << "no tests/data/golden/slopes.json";
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str());
  int cases = 0;
  for (const nlohmann::json& c : j.at("cases")) {
    ModelConfig config = Heads(c.at("n_heads").get<int>());
    if (!c.at("decay_start").is_null()) config.decay_start = c.at("decay_start").get<double>();
    config.use_retnet_slopes = c.at("rule").get<std::string>() == "retnet";
    const std::vector<double> slopes = DecaySlopes(config), gammas = DecayGammas(config);
    const std::vector<double> expected_slopes = c.at("slopes").get<std::vector<double>>();
    const std::vector<double> expected_gammas = c.at("gammas").get<std::vector<double>>();
    ASSERT_EQ(slopes.size(), expected_slopes.size());
    for (size_t h = 0; h < slopes.size(); ++h) {
      EXPECT_NEAR(slopes[h], expected_slopes[h], 1e-12) << c.dump();
      EXPECT_NEAR(gammas[h], expected_gammas[h], 1e-12) << c.dump();
    }
    ++cases;
  }
  EXPECT_GE(cases, 8);
}

}  // namespace
}  // namespace supra
