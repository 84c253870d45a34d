// Unit tests of supra-cli's flag parser, number parsing, exit-code table and
// hand-written grpc.health.v1 wire format.
#include "client/flags.h"

#include <string>
#include <vector>

#include "client/invocation.h"
#include "client/model_commands.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace supra::client {
namespace {

const std::vector<FlagSpec> kSpecs = {
    {"name", "N", "a value"},
    {"flag", "", "a boolean"},
    {"many", "X", "repeatable", true},
};

TEST(FlagsTest, ParsesValuesBooleansRepeatsAndPositionals) {
  ParsedFlags parsed;
  const std::vector<std::string> args = {"--name", "v1", "pos1", "--flag", "--many=a", "--many", "b", "-", "--", "--x"};
  ASSERT_EQ(ParseFlags({&kSpecs}, args, 0, false, &parsed, nullptr), std::nullopt);
  ASSERT_NE(parsed.Get("name"), nullptr);
  EXPECT_EQ(*parsed.Get("name"), "v1");
  EXPECT_TRUE(parsed.Has("flag"));
  EXPECT_THAT(parsed.GetAll("many"), ::testing::ElementsAre("a", "b"));
  EXPECT_THAT(parsed.positional(), ::testing::ElementsAre("pos1", "-", "--x"));
  EXPECT_EQ(parsed.Get("absent"), nullptr);
}

TEST(FlagsTest, StopsAtTheFirstPositionalWhenAsked) {
  ParsedFlags parsed;
  size_t end = 0;
  const std::vector<std::string> args = {"--flag", "cmd", "--name", "x"};
  ASSERT_EQ(ParseFlags({&kSpecs}, args, 0, true, &parsed, &end), std::nullopt);
  EXPECT_EQ(end, 1U);
  EXPECT_FALSE(parsed.Has("name"));
}

TEST(FlagsTest, RefusesBadFlags) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--unknown"}, {"--name"}, {"--flag=1"}, {"--name", "a", "--name", "b"}, {"-n"}}) {
    ParsedFlags parsed;
    EXPECT_NE(ParseFlags({&kSpecs}, args, 0, false, &parsed, nullptr), std::nullopt) << args[0];
  }
  ParsedFlags parsed;
  const std::optional<std::string> error = ParseFlags({&kSpecs}, {"--token=s3cret"}, 0, false, &parsed, nullptr);
  ASSERT_NE(error, std::nullopt);
  EXPECT_THAT(*error, ::testing::HasSubstr("--token-file"));
  EXPECT_THAT(*error, ::testing::Not(::testing::HasSubstr("s3cret")));
}

TEST(FlagsTest, NumbersAreParsedStrictly) {
  EXPECT_EQ(ParseInt32("42"), 42);
  EXPECT_EQ(ParseInt32("+7"), 7);
  EXPECT_EQ(ParseInt32("-3"), -3);
  EXPECT_EQ(ParseInt32("4x"), std::nullopt);
  EXPECT_EQ(ParseInt32(""), std::nullopt);
  EXPECT_EQ(ParseInt32("2147483648"), std::nullopt);
  EXPECT_EQ(ParseInt64("9000000000"), 9000000000);
  EXPECT_EQ(ParseUint64("18446744073709551615"), UINT64_MAX);
  EXPECT_EQ(ParseUint64("-1"), std::nullopt);
  EXPECT_EQ(ParseFloat("0.5"), 0.5F);
  EXPECT_EQ(ParseFloat("1e-3"), 1e-3F);
  EXPECT_EQ(ParseFloat("inf"), std::nullopt);
  EXPECT_EQ(ParseFloat("nan"), std::nullopt);
  EXPECT_EQ(ParseFloat("0.5.1"), std::nullopt);
  EXPECT_EQ(ParseDouble("2.5"), 2.5);
}

TEST(FlagsTest, TokenLists) {
  EXPECT_EQ(ParseTokenList("1,2,3"), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(ParseTokenList(" 5 , 6"), (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(ParseTokenList("7"), (std::vector<int32_t>{7}));
  EXPECT_EQ(ParseTokenList(""), std::nullopt);
  EXPECT_EQ(ParseTokenList("1,,2"), std::nullopt);
  EXPECT_EQ(ParseTokenList("1,"), std::nullopt);
  EXPECT_EQ(ParseTokenList("a"), std::nullopt);
}

TEST(ExitCodeTest, StatusCodesMapToTheDocumentedExitCodes) {
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::OK), 0);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::CANCELLED), 1);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::UNKNOWN), 1);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::UNAVAILABLE), 3);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::DEADLINE_EXCEEDED), 3);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::NOT_FOUND), 4);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::ABORTED), 5);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::RESOURCE_EXHAUSTED), 5);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::FAILED_PRECONDITION), 6);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::UNAUTHENTICATED), 7);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::PERMISSION_DENIED), 7);
  EXPECT_EQ(ExitCodeForStatus(grpc::StatusCode::INVALID_ARGUMENT), 8);
}

TEST(ExitCodeTest, StatusCodeNames) {
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::FAILED_PRECONDITION), "FAILED_PRECONDITION");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");
  EXPECT_EQ(StatusCodeName(static_cast<grpc::StatusCode>(99)), "CODE_99");
}

TEST(HealthWireTest, RequestAndResponseBytes) {
  EXPECT_EQ(EncodeHealthCheckRequest(""), "");
  EXPECT_EQ(EncodeHealthCheckRequest("ab"), std::string("\x0a\x02"
                                                        "ab",
                                                        4));
  EXPECT_EQ(DecodeHealthCheckResponse(""), 0);                                   // UNKNOWN, the default
  EXPECT_EQ(DecodeHealthCheckResponse(std::string("\x08\x01", 2)), 1);           // SERVING
  EXPECT_EQ(DecodeHealthCheckResponse(std::string("\x08\x02", 2)), 2);           // NOT_SERVING
  EXPECT_EQ(DecodeHealthCheckResponse(std::string("\x12\x01x\x08\x01", 5)), 1);  // unknown field skipped
  EXPECT_EQ(DecodeHealthCheckResponse(std::string("\x08", 1)), std::nullopt);    // truncated
}

}  // namespace
}  // namespace supra::client
