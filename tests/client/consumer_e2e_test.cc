// Runs the consumer project built against the installed package (see
// consumer_build.cmake) against a real server.
#include <string>

#include "gtest/gtest.h"
#include "tests/testing/server_process.h"
#include "tests/testing/subprocess.h"

namespace relu {
namespace {

TEST(ConsumerTest, InstalledPackageWorksAgainstTheServer) {
  std::unique_ptr<testing::ServerProcess> server =
      testing::ServerProcess::Start();
  ASSERT_NE(server, nullptr);
  testing::ProcessResult r =
      testing::RunProcess({RELU_CONSUMER_PATH, server->target()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out, "0 0 0 2 \nSERVING\n");
}

}  // namespace
}  // namespace relu
