// Client behaviour that needs no server.
#include "relu/client.h"

#include "gtest/gtest.h"

namespace relu {
namespace {

TEST(ClientTest, MissingTlsFileFailsEveryCall) {
  ClientOptions options;
  options.tls_ca_file = "/nonexistent/ca.pem";
  absl::StatusOr<std::unique_ptr<Client>> created =
      Client::Create("127.0.0.1:1", options);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(created.status().message().find("/nonexistent/ca.pem"),
            absl::string_view::npos);

  Client client("127.0.0.1:1", options);
  EXPECT_EQ(client.init_status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client.Apply(std::vector<float>{1}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client.Health().status().code(), absl::StatusCode::kNotFound);
  std::future<absl::StatusOr<Tensor>> f =
      client.ApplyAsync(Tensor::FromFloat32({1}));
  EXPECT_EQ(f.get().status().code(), absl::StatusCode::kNotFound);
}

TEST(ClientTest, CertificateWithoutKeyIsRejected) {
  ClientOptions options;
  options.tls_cert_file = "/nonexistent/cert.pem";
  EXPECT_EQ(Client::Create("127.0.0.1:1", options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ClientTest, DefaultOptions) {
  ClientOptions options;
  EXPECT_EQ(options.deadline, std::chrono::seconds(10));
  EXPECT_EQ(options.lb_policy, "round_robin");
  EXPECT_EQ(options.max_send_message_bytes, 256 << 20);
  EXPECT_EQ(options.max_receive_message_bytes, 256 << 20);
  EXPECT_GT(options.retry_buffer_bytes, 16 << 20);
  Client client("localhost:50051");
  EXPECT_TRUE(client.init_status().ok());
  EXPECT_EQ(client.target(), "localhost:50051");
}

}  // namespace
}  // namespace relu
