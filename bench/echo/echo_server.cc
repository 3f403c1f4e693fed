// relu_echo_server: the floor for the service benchmark. It serves
// relu.v1.ReluService/ApplyReLU with the same gRPC, the same callback API and
// the same messages as relu-server, and answers every call with the request's
// tensor moved into the response: no validation, no compute, no batching.
// Protobuf parses the request and serializes the response, so its tensor bytes
// are copied twice, as relu-server's ModelInfer copies them; relu-server's
// ApplyReLU reads and writes gRPC's slices in place and copies them not at
// all. The ratio of a server's figures to this one's is what that server adds
// on top of gRPC and protobuf's two copies.
//
// With --mode raw it is the floor itself: the method is registered raw
// (ByteBuffer in, ByteBuffer out, as relu-server's is) and each answer is the
// request's bytes, their slices shared, not copied. An ApplyReLURequest's
// bytes parse as an ApplyReLUResponse holding the same tensor (field 1 in
// both), so a client reads a valid answer. Nothing a server does per call
// can cost less over gRPC's callback API.
//
// --mode raw-trailer is the raw floor plus one `traceparent` trailer per
// call, as relu-server returns: the share of the floor that trailer takes.
//
// With --mode async-raw the same answer comes from gRPC's asynchronous API
// instead: completion queues polled by threads of its own (one per core),
// each with calls requested ahead, as Triton's front end is built. It
// measures whether that API's floor is below the callback API's.
//
// It also answers grpc.health.v1 for "relu.v1.ReluService" (SERVING), since
// relu-cli checks health on the channel before it sends calls.

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/support/message_allocator.h"
#include "relu/v1/relu.grpc.pb.h"

namespace relu::bench {
namespace {

using Holder = grpc::MessageHolder<v1::ApplyReLURequest, v1::ApplyReLUResponse>;

// A call's request and response; gRPC releases them when the call is over.
class EchoMessages final : public Holder {
 public:
  EchoMessages() {
    set_request(&request_);
    set_response(&response_);
  }
  void Release() override { delete this; }

 private:
  v1::ApplyReLURequest request_;
  v1::ApplyReLUResponse response_;
};

// Hands the handler a mutable request so the tensor can be moved, as
// relu-server's allocator does.
class EchoAllocator final
    : public grpc::MessageAllocator<v1::ApplyReLURequest,
                                    v1::ApplyReLUResponse> {
 public:
  Holder* AllocateMessages() override { return new EchoMessages(); }
};

// Answers on the gRPC thread that ran the handler; thread-safe (no state).
class EchoService final : public v1::ReluService::CallbackService {
 public:
  EchoService() { SetMessageAllocatorFor_ApplyReLU(&allocator_); }

  grpc::ServerUnaryReactor* ApplyReLU(
      grpc::CallbackServerContext* context, const v1::ApplyReLURequest*,
      v1::ApplyReLUResponse* response) override {
    v1::ApplyReLURequest* request =
        static_cast<Holder*>(context->GetRpcAllocatorState())->request();
    v1::Tensor* in = request->mutable_tensor();
    v1::Tensor* out = response->mutable_tensor();
    out->set_dtype(in->dtype());
    out->mutable_shape()->Swap(in->mutable_shape());
    out->mutable_data()->swap(*in->mutable_data());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  EchoAllocator allocator_;
};

// The raw floor: each call's answer is its request's bytes. With `trailer`,
// each answer also carries a `traceparent` trailer of the length
// relu-server returns on every call (issue 17's trace context), a fixed
// value: what gRPC charges for the trailer, without the ids' making.
class RawEchoService final
    : public v1::ReluService::WithRawCallbackMethod_ApplyReLU<
          v1::ReluService::Service> {
 public:
  explicit RawEchoService(bool trailer) : trailer_(trailer) {}

  grpc::ServerUnaryReactor* ApplyReLU(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    // A call cut before its message arrived comes with no buffer; sending
    // one back would be a gRPC API misuse (an abort).
    if (!request->Valid()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "no message"));
      return reactor;
    }
    *response = *request;  // shares the slices
    if (trailer_) {
      context->AddTrailingMetadata(
          "traceparent",
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    }
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const bool trailer_;
};

// The raw floor over the asynchronous API: a call requested ahead on a
// completion queue; when a call arrives it requests the next one and answers
// with the request's bytes (slices shared); when the answer is sent it is
// deleted. Each object is driven by the one thread that polls its queue.
class AsyncRawCall {
 public:
  using Service =
      v1::ReluService::WithRawMethod_ApplyReLU<v1::ReluService::Service>;

  AsyncRawCall(Service* service, grpc::ServerCompletionQueue* queue)
      : service_(service), queue_(queue), responder_(&context_) {
    service_->RequestApplyReLU(&context_, &request_, &responder_, queue_,
                               queue_, this);
  }

  // The queue's event for this call: `ok` false when the server shuts down
  // before a call arrived.
  void Proceed(bool ok) {
    if (answered_ || !ok) {
      delete this;
      return;
    }
    new AsyncRawCall(service_, queue_);
    answered_ = true;
    if (!request_.Valid()) {
      responder_.FinishWithError(
          grpc::Status(grpc::StatusCode::CANCELLED, "no message"), this);
      return;
    }
    responder_.Finish(request_, grpc::Status::OK, this);
  }

 private:
  Service* const service_;
  grpc::ServerCompletionQueue* const queue_;
  grpc::ServerContext context_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_;
  bool answered_ = false;
};

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts
// later; call it first in main(). Returns the set for ServeUntilSignal().
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Serves `service` (and the default health service, SERVING for
// relu.v1.ReluService) on `address`, prints "gRPC listening on HOST:PORT",
// and returns 0 once one of `signals` arrives and the server has shut down;
// 1 (after a message) when it cannot listen.
// With `async_service`, `async_threads` threads of its own poll a completion
// queue each, with `calls_ahead` calls requested ahead on each.
int ServeUntilSignal(const std::string& address, int max_message_bytes,
                     grpc::Service* service, const sigset_t& signals,
                     AsyncRawCall::Service* async_service = nullptr,
                     int async_threads = 0, int calls_ahead = 0) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  builder.RegisterService(service);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  for (int i = 0; async_service != nullptr && i < async_threads; ++i) {
    queues.push_back(builder.AddCompletionQueue());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "relu_echo_server: cannot listen on %s\n",
                 address.c_str());
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus("relu.v1.ReluService",
                                                    true);
  const std::string host = address.substr(0, address.rfind(':'));
  std::vector<std::thread> pollers;
  for (const auto& queue : queues) {
    grpc::ServerCompletionQueue* q = queue.get();
    for (int i = 0; i < calls_ahead; ++i) new AsyncRawCall(async_service, q);
    pollers.emplace_back([q] {
      void* tag = nullptr;
      bool ok = false;
      while (q->Next(&tag, &ok)) static_cast<AsyncRawCall*>(tag)->Proceed(ok);
    });
  }
  std::printf("gRPC listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown();
  // Queues shut down after the server; their pollers delete what is left.
  for (const auto& queue : queues) queue->Shutdown();
  for (std::thread& poller : pollers) poller.join();
  return 0;
}

}  // namespace
}  // namespace relu::bench

int main(int argc, char** argv) {
  CLI::App app{
      "relu_echo_server: ApplyReLU answering with the request tensor "
      "(the benchmark's floor)"};
  std::string address = "127.0.0.1:0";
  int max_message_bytes = 256 << 20;
  std::string mode = "proto";
  app.add_option("--grpc-address", address, "host:port; port 0 picks one")
      ->capture_default_str();
  app.add_option("--max-message-bytes", max_message_bytes,
                 "Largest message received and sent, bytes")
      ->capture_default_str()
      ->check(CLI::Range(1024, 2147483647));
  app.add_option("--mode", mode,
                 "proto: protobuf parses and serializes each call; raw: the "
                 "request's bytes are the answer (no parse); raw-trailer: "
                 "raw plus a traceparent trailer per call; async-raw: the "
                 "same as raw over gRPC's asynchronous API, polled by "
                 "threads of its own")
      ->capture_default_str()
      ->check(CLI::IsMember({"proto", "raw", "raw-trailer", "async-raw"}));
  CLI11_PARSE(app, argc, argv);

  // As relu-server does: Debian's abseil detects deadlocks on every
  // absl::Mutex lock unless told not to (see server/main.cc).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Blocked before gRPC starts its threads, so only sigwait sees them.
  const sigset_t signals = relu::bench::BlockStopSignals();
  relu::bench::EchoService proto_service;
  relu::bench::RawEchoService raw_service(mode == "raw-trailer");
  if (mode == "async-raw") {
    relu::bench::AsyncRawCall::Service async_service;
    const int threads =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    // Enough calls requested ahead for the harness's 4 x 64 streams.
    return relu::bench::ServeUntilSignal(address, max_message_bytes,
                                         &async_service, signals,
                                         &async_service, threads, 256);
  }
  grpc::Service* service = mode != "proto"
                               ? static_cast<grpc::Service*>(&raw_service)
                               : &proto_service;
  return relu::bench::ServeUntilSignal(address, max_message_bytes, service,
                                       signals);
}
