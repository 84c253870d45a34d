#include "engine/model/config.h"

#include "gtest/gtest.h"

namespace supra {
namespace {
TEST(ConfigTest, Placeholder) { EXPECT_FALSE(ParseModelConfig("{}").ok()); }
}  // namespace
}  // namespace supra
