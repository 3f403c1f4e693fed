// relu_raw_server: relu::service::RawReluService (ApplyReLU over the raw
// ByteBuffer callback API, the output written once into the response) with
// relu-server's kernel and batch scheduler and their default options, for
// bench/run_service_bench.py to measure beside relu-server. No metrics, no
// drain, no OIP: a measurement vehicle, not a second server.

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "bench/bench_server.h"
#include "bench/raw/raw_relu_service.h"
#include "grpcpp/grpcpp.h"
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

  // Blocked before any thread starts, so only sigwait sees them.
  const sigset_t signals = relu::bench::BlockStopSignals();

  relu::kernel::Kernel kernel;
  relu::batching::BatchScheduler scheduler(
      batching, [&kernel](const relu::kernel::Segment* segments, size_t count) {
        kernel.ApplyBatch(segments, count);
      });
  relu::service::RawReluService service(&scheduler);

  const int exit_code = relu::bench::ServeUntilSignal(
      "relu_raw_server", address, max_message_bytes, &service, signals);
  scheduler.Drain();
  return exit_code;
}
