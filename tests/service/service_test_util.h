// An in-process relu-server on 127.0.0.1:0 and a stub connected to it.
#pragma once

#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "relu/v1/relu.grpc.pb.h"
#include "server/service/server.h"

namespace relu::service {

class ServerFixture {
 public:
  explicit ServerFixture(ServerOptions options = {}) {
    options.grpc_address = "127.0.0.1:0";
    options.metrics_address = "off";
    options.http_address = "off";
    server_ = std::make_unique<ReluServer>(options);
    start_status_ = server_->Start();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(
        server_->grpc_address(), grpc::InsecureChannelCredentials(), args);
    stub_ = v1::ReluService::NewStub(channel_);
  }

  const absl::Status& start_status() const { return start_status_; }
  ReluServer& server() { return *server_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  v1::ReluService::Stub& stub() { return *stub_; }

  // A blocking call with a generous deadline.
  grpc::Status Call(const v1::ApplyReLURequest& request,
                    v1::ApplyReLUResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    return stub_->ApplyReLU(&context, request, response);
  }

 private:
  std::unique_ptr<ReluServer> server_;
  absl::Status start_status_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ReluService::Stub> stub_;
};

}  // namespace relu::service
