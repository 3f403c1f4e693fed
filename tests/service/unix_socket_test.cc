// relu-server on a Unix socket (--grpc-address unix:PATH or
// unix-abstract:NAME), for same-host callers: calls answered, the socket
// file's mode, its removal at shutdown, a stale file from a killed server
// replaced, and a regular file at the path left alone.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "relu/v1/relu.grpc.pb.h"
#include "server/service/server.h"
#include "server/service/server_options.h"

namespace relu::service {
namespace {

std::string TempPath(const std::string& name) {
  return "/tmp/relu_unix_test_" + std::to_string(getpid()) + "_" + name;
}

ServerOptions UnixOptions(const std::string& address) {
  ServerOptions options;
  options.grpc_address = address;
  options.metrics_address = "off";
  options.http_address = "off";
  return options;
}

// ReLU of [-1, 2] through `target`.
grpc::Status CallThrough(const std::string& target) {
  auto stub = v1::ReluService::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  v1::ApplyReLURequest request;
  request.mutable_tensor()->set_dtype(v1::DATA_TYPE_FLOAT32);
  request.mutable_tensor()->add_shape(2);
  const float in[2] = {-1.0f, 2.0f};
  request.mutable_tensor()->set_data(reinterpret_cast<const char*>(in),
                                     sizeof(in));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  v1::ApplyReLUResponse response;
  grpc::Status status = stub->ApplyReLU(&context, request, &response);
  if (status.ok()) {
    const float want[2] = {0.0f, 2.0f};
    EXPECT_EQ(response.tensor().data(),
              std::string(reinterpret_cast<const char*>(want), sizeof(want)));
  }
  return status;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

TEST(UnixSocketTest, ServesWithItsModeAndIsRemovedAtShutdown) {
  const std::string path = TempPath("mode.sock");
  ServerOptions options = UnixOptions("unix:" + path);
  options.grpc_socket_mode = "0600";
  {
    ReluServer server(options);
    ASSERT_TRUE(server.Start().ok());
    EXPECT_EQ(server.grpc_address(), "unix:" + path);
    struct stat st;
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    grpc::Status status = CallThrough("unix:" + path);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(server.Drain(), 0u);
  }
  EXPECT_FALSE(Exists(path));
}

TEST(UnixSocketTest, DefaultModeLetsTheGroupConnect) {
  const std::string path = TempPath("default.sock");
  ReluServer server(UnixOptions("unix://" + path));
  ASSERT_TRUE(server.Start().ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_TRUE(CallThrough("unix:" + path).ok());
}

// A socket file left by a server that was killed does not stop the next.
TEST(UnixSocketTest, StaleSocketFileIsReplaced) {
  const std::string path = TempPath("stale.sock");
  const std::string copy = path + ".keep";
  {
    ReluServer first(UnixOptions("unix:" + path));
    ASSERT_TRUE(first.Start().ok());
    // A second name for the socket file, put back after the server removed
    // it: the file a killed server leaves.
    ASSERT_EQ(link(path.c_str(), copy.c_str()), 0);
    first.Drain();
  }
  ASSERT_FALSE(Exists(path));
  ASSERT_EQ(rename(copy.c_str(), path.c_str()), 0);
  ASSERT_TRUE(Exists(path));
  ReluServer second(UnixOptions("unix:" + path));
  ASSERT_TRUE(second.Start().ok());
  EXPECT_TRUE(CallThrough("unix:" + path).ok());
}

// What is at the path and is not a socket is not removed: the server does
// not start.
TEST(UnixSocketTest, RegularFileAtThePathIsLeftAlone) {
  const std::string path = TempPath("regular");
  std::ofstream(path) << "keep me";
  ReluServer server(UnixOptions("unix:" + path));
  absl::Status status = server.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "keep me");
  std::remove(path.c_str());
}

TEST(UnixSocketTest, AbstractSocketServes) {
  const std::string name = "relu_unix_test_" + std::to_string(getpid());
  ReluServer server(UnixOptions("unix-abstract:" + name));
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(server.grpc_address(), "unix-abstract:" + name);
  EXPECT_TRUE(CallThrough("unix-abstract:" + name).ok());
}

TEST(UnixSocketTest, BadModeIsRefused) {
  ServerOptions options = UnixOptions("unix:" + TempPath("bad.sock"));
  for (const char* mode : {"", "0800", "rw", "01777", "12345"}) {
    options.grpc_socket_mode = mode;
    absl::Status status = ValidateServerOptions(options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << mode;
    EXPECT_NE(status.message().find("--grpc-socket-mode"), std::string::npos);
  }
  EXPECT_EQ(UnixSocketPath("unix:///run/relu.sock"), "/run/relu.sock");
  EXPECT_EQ(UnixSocketPath("unix:relu.sock"), "relu.sock");
  EXPECT_EQ(UnixSocketPath("unix-abstract:relu"), "");
  EXPECT_EQ(UnixSocketPath("127.0.0.1:0"), "");
}

}  // namespace
}  // namespace relu::service
