// relu_raw_server: relu::service::RawReluService (ApplyReLU over the raw
// ByteBuffer callback API, the output written once into the response) with
// relu-server's kernel and batch scheduler and their default options, for
// bench/run_service_bench.py to measure beside relu-server. No metrics, no
// drain, no OIP: a measurement vehicle, not a second server.
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "bench/raw/raw_relu_service.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/batching/batch_scheduler.h"
#include "server/kernel/relu_kernel.h"

int main(int argc, char** argv) {
  CLI::App app{"relu_raw_server: ApplyReLU over the raw ByteBuffer API"};
  std::string address = "127.0.0.1:0";
  int max_message_bytes = 256 << 20;
  relu::batching::BatchSchedulerOptions batching;
  app.add_option("--grpc-address", address, "host:port; port 0 picks one")
      ->capture_default_str();
  app.add_option("--max-message-bytes", max_message_bytes,
                 "Largest message received and sent, bytes")
      ->capture_default_str()
      ->check(CLI::Range(1024, 2147483647));
  app.add_option("--max-batch-requests", batching.max_batch_requests,
                 "Most requests coalesced into one kernel run")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  CLI11_PARSE(app, argc, argv);

  // Blocked before any thread starts, so only sigwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  relu::kernel::Kernel kernel;
  relu::batching::BatchScheduler scheduler(
      batching, [&kernel](const relu::kernel::Segment* segments, size_t count) {
        kernel.ApplyBatch(segments, count);
      });
  relu::service::RawReluService service(&scheduler);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(max_message_bytes);
  builder.SetMaxSendMessageSize(max_message_bytes);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "relu_raw_server: cannot listen on %s\n",
                 address.c_str());
    return 1;
  }
  server->GetHealthCheckService()->SetServingStatus("relu.v1.ReluService",
                                                    true);
  const std::string host = address.substr(0, address.rfind(':'));
  std::printf("gRPC listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  int signal = 0;
  sigwait(&signals, &signal);
  server->Shutdown();
  scheduler.Drain();
  return 0;
}
