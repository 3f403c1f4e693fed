// relu-cli argument handling that needs no server.
#include "client/cli/cli.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace relu::cli {
namespace {

using ::testing::HasSubstr;

struct Result {
  int code;
  std::string out, err;
};

Result RunCliFor(std::vector<std::string> args,
                 const std::string& stdin_text = "") {
  std::vector<const char*> argv = {"relu-cli"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  const int code = RunCli(static_cast<int>(argv.size()), argv.data(), in, out,
                          err, /*out_is_terminal=*/false);
  return {code, out.str(), err.str()};
}

TEST(CliTest, HelpOnEveryCommand) {
  Result r = RunCliFor({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("apply"));
  EXPECT_THAT(r.out, HasSubstr("bench"));
  for (const char* cmd : {"apply", "health", "bench"}) {
    r = RunCliFor({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_THAT(r.out, HasSubstr("--target")) << cmd;
    EXPECT_THAT(r.out, HasSubstr("--timeout")) << cmd;
    EXPECT_THAT(r.out, HasSubstr("--tls-ca")) << cmd;
  }
  EXPECT_THAT(RunCliFor({"apply", "--help"}).out, HasSubstr("--max-value"));
  EXPECT_THAT(RunCliFor({"bench", "--help"}).out, HasSubstr("--concurrency"));
}

TEST(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCliFor({}).code, 2);
  EXPECT_EQ(RunCliFor({"frobnicate"}).code, 2);
  EXPECT_EQ(RunCliFor({"apply", "--no-such-flag", "--", "1"}).code, 2);
  EXPECT_EQ(RunCliFor({"apply", "--dtype", "int8", "--", "1"}).code, 2);
  EXPECT_EQ(RunCliFor({"apply", "--max-value", "abc", "--", "1"}).code, 2);
  EXPECT_EQ(RunCliFor({"bench", "--concurrency", "0"}).code, 2);
  EXPECT_EQ(RunCliFor({"bench", "--duration", "1", "--requests", "5"}).code, 2);
  EXPECT_EQ(RunCliFor({"bench", "--arrivals", "bursty"}).code, 2);
  EXPECT_EQ(RunCliFor({"bench", "--rate", "-1"}).code, 2);
  EXPECT_EQ(RunCliFor({"apply", "--input", "x.npy", "--dtype", "float64"}).code,
            2);

  Result r = RunCliFor({"apply", "--", "1", "abc"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "error: INVALID_ARGUMENT: not a number: 'abc'\n");
  EXPECT_EQ(r.out, "");

  r = RunCliFor({"apply"}, "  \n");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("error: INVALID_ARGUMENT: no numbers"));

  r = RunCliFor({"apply", "--input", "/nonexistent/x.npy"});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("error: NOT_FOUND: cannot open /nonexistent/x.npy"));
}

TEST(CliTest, ParsesNumbersLikePythonFloat) {
  EXPECT_EQ(*ParseNumber("3"), 3.0);
  EXPECT_EQ(*ParseNumber("-2.5e1"), -25.0);
  EXPECT_TRUE(std::signbit(*ParseNumber("-0.0")));
  EXPECT_TRUE(std::isnan(*ParseNumber("nan")));
  EXPECT_TRUE(std::isnan(*ParseNumber("NaN")));
  EXPECT_EQ(*ParseNumber("-inf"), -HUGE_VAL);
  EXPECT_EQ(*ParseNumber("Infinity"), HUGE_VAL);
  EXPECT_EQ(*ParseNumber("1e400"), HUGE_VAL);
  EXPECT_FALSE(ParseNumber("").ok());
  EXPECT_FALSE(ParseNumber("1.5x").ok());
  EXPECT_FALSE(ParseNumber("0x10").ok());

  absl::StatusOr<std::vector<double>> list =
      ParseNumberList("[-5.0, -2.0,\n 0.0, 3.0]\n");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (std::vector<double>{-5, -2, 0, 3}));
}

TEST(CliTest, MakeTensorRoundsToTheDtype) {
  Tensor t = MakeTensor({0.1, -2}, DataType::kFloat16);
  EXPECT_EQ(t.dtype, DataType::kFloat16);
  EXPECT_EQ(t.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ((*t.ToFloat16())[0].bits, 0x2e66);
  t = MakeTensor({0.1}, DataType::kFloat32);
  EXPECT_EQ((*t.ToFloat32())[0], 0.1f);
  t = MakeTensor({0.1}, DataType::kBFloat16);
  EXPECT_EQ((*t.ToBFloat16())[0].bits, BFloat16(0.1).bits);
}

TEST(CliTest, ErrorLine) {
  EXPECT_EQ(ErrorLine(absl::InvalidArgumentError("bad")),
            "error: INVALID_ARGUMENT: bad");
  EXPECT_EQ(ErrorLine(absl::UnavailableError("down")),
            "error: UNAVAILABLE: down");
}

}  // namespace
}  // namespace relu::cli
