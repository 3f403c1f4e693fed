// relu-server's flags: defaults, names, environment variables, and the
// effective configuration line. No server is started.
#include "server/service/server_options.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace relu::service {
namespace {

// Parses `args` (without the program name) into a fresh ServerOptions.
// Returns false when CLI11 refuses them.
bool Parse(std::vector<std::string> args, ServerOptions* options) {
  CLI::App app{"test"};
  AddServerFlags(app, *options);
  std::vector<const char*> argv = {"relu-server"};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return false;
  }
  return true;
}

// Sets an environment variable for one test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    setenv(name, value, 1);
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(ServerOptionsTest, InlineWhenIdleIsOnByDefault) {
  EXPECT_TRUE(ServerOptions{}.batching.run_inline_when_idle);
  EXPECT_FALSE(batching::BatchSchedulerOptions{}.run_inline_when_idle);
  ServerOptions options;
  ASSERT_TRUE(Parse({}, &options));
  EXPECT_TRUE(options.batching.run_inline_when_idle);
}

TEST(ServerOptionsTest, InlineWhenIdleFlag) {
  struct Case {
    std::string arg;
    bool want;
  };
  for (const Case& c : std::vector<Case>{{"--inline-when-idle", true},
                                         {"--inline-when-idle=false", false},
                                         {"--inline-when-idle=0", false},
                                         {"--inline-when-idle=off", false},
                                         {"--inline-when-idle=true", true},
                                         {"--inline-when-idle=1", true}}) {
    ServerOptions options;
    options.batching.run_inline_when_idle = !c.want;
    ASSERT_TRUE(Parse({c.arg}, &options)) << c.arg;
    EXPECT_EQ(options.batching.run_inline_when_idle, c.want) << c.arg;
  }
  ServerOptions options;
  EXPECT_FALSE(Parse({"--inline-when-idle=maybe"}, &options));
}

TEST(ServerOptionsTest, InlineWhenIdleFromTheEnvironment) {
  for (const char* value : {"0", "false", "off"}) {
    ScopedEnv env("RELU_INLINE_WHEN_IDLE", value);
    ServerOptions options;
    ASSERT_TRUE(Parse({}, &options)) << value;
    EXPECT_FALSE(options.batching.run_inline_when_idle) << value;
  }
  for (const char* value : {"1", "true"}) {
    ScopedEnv env("RELU_INLINE_WHEN_IDLE", value);
    ServerOptions options;
    options.batching.run_inline_when_idle = false;
    ASSERT_TRUE(Parse({}, &options)) << value;
    EXPECT_TRUE(options.batching.run_inline_when_idle) << value;
  }
  {
    // The command line wins over the environment.
    ScopedEnv env("RELU_INLINE_WHEN_IDLE", "0");
    ServerOptions options;
    ASSERT_TRUE(Parse({"--inline-when-idle=true"}, &options));
    EXPECT_TRUE(options.batching.run_inline_when_idle);
  }
}

TEST(ServerOptionsTest, RequestLogFlags) {
  ServerOptions options;
  ASSERT_TRUE(Parse({}, &options));
  EXPECT_EQ(options.request_log, "errors");
  EXPECT_EQ(options.request_log_file, "");
  EXPECT_EQ(options.request_log_buffer_lines, 4096u);
  ASSERT_TRUE(Parse({"--request-log=sample:10", "--request-log-file=/tmp/x",
                     "--request-log-buffer-lines=5"},
                    &options));
  EXPECT_EQ(options.request_log, "sample:10");
  EXPECT_EQ(options.request_log_file, "/tmp/x");
  EXPECT_EQ(options.request_log_buffer_lines, 5u);
  EXPECT_TRUE(ValidateServerOptions(options).ok());
  for (const char* bad : {"--request-log=sample:0", "--request-log=some",
                          "--request-log-buffer-lines=0"}) {
    ServerOptions refused;
    EXPECT_FALSE(Parse({bad}, &refused)) << bad;
  }
  {
    ScopedEnv env("RELU_REQUEST_LOG", "all");
    ServerOptions from_env;
    ASSERT_TRUE(Parse({}, &from_env));
    EXPECT_EQ(from_env.request_log, "all");
  }
  ServerOptions invalid;
  invalid.request_log = "sample:x";
  EXPECT_EQ(ValidateServerOptions(invalid).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_NE(DescribeOptions(options).find(
                "request_log=sample:10 request_log_file=/tmp/x"),
            std::string::npos);
}

TEST(ServerOptionsTest, DescribeOptionsShowsInlineWhenIdle) {
  ServerOptions options;
  EXPECT_NE(DescribeOptions(options).find(" inline_when_idle=true"),
            std::string::npos);
  options.batching.run_inline_when_idle = false;
  EXPECT_NE(DescribeOptions(options).find(" inline_when_idle=false"),
            std::string::npos);
}

}  // namespace
}  // namespace relu::service
