// relu-server: parses flags into ServerOptions, starts the server, waits for
// SIGTERM or SIGINT, drains. Exit codes: 0 after a complete drain, 1 when it
// cannot start or the drain timed out with calls cut, 2 for a bad flag.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "absl/synchronization/mutex.h"
#include "server/service/logging.h"
#include "server/service/server.h"
#include "server/service/server_options.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  relu::service::ServerOptions options;
  CLI::App app{
      "relu-server: tf.keras.layers.ReLU as a gRPC service "
      "(relu.v1.ReluService). Every flag also reads RELU_<FLAG_NAME> from "
      "the environment, e.g. RELU_GRPC_ADDRESS."};
  relu::service::AddServerFlags(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  // The options as the server will check them, here where the flags were
  // parsed: a bad value is one line naming its flag and exit 2.
  if (absl::Status s = relu::service::ValidateServerOptions(options); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 2;
  }
  relu::service::SetUpLogging(options.log_level, options.log_format);
  // Debian's abseil is built without NDEBUG, so absl::Mutex (every lock
  // gRPC takes) records each acquisition in a lock graph to detect
  // deadlocks: a fifth of the instructions of a small call. That is a
  // debugging aid; release builds of abseil leave it off, and so do we.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  relu::service::ResolveDefaults(options);

  // Every thread started from here on inherits the blocked signals; this one
  // takes them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  relu::service::ReluServer server(options);
  spdlog::info("relu-server starting: {}",
               relu::service::DescribeOptions(options));
  if (absl::Status status = server.Start(); !status.ok()) {
    spdlog::error("cannot start: {}", std::string(status.message()));
    return 1;
  }
  spdlog::info("kernel path {}", server.kernel_isa());
  if (!server.metrics_address().empty()) {
    spdlog::info("metrics listening on {}", server.metrics_address());
  }
  if (!server.http_address().empty()) {
    spdlog::info("HTTP listening on {}", server.http_address());
  }
  // Last: tests and scripts take this line to mean "ready".
  spdlog::info("gRPC listening on {}", server.grpc_address());

  int received = 0;
  sigwait(&signals, &received);
  spdlog::info("received {}; draining (up to {} s)", strsignal(received),
               options.drain_timeout_s);
  const size_t cut = server.Drain();
  if (cut > 0) {
    spdlog::error("drain timed out: {} accepted calls were cut", cut);
    return 1;
  }
  spdlog::info("drained; exiting");
  return 0;
}
