// Starts the real relu-server binary as a child process for end-to-end tests.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace relu::testing {

// Path of the relu-server binary under test (set by CMake).
const char* ServerBinaryPath();

// A relu-server child process on loopback ports. Not thread-safe.
class ServerProcess {
 public:
  // Starts the server with `args`, adding --grpc-address=127.0.0.1:0,
  // --metrics-address=127.0.0.1:0 and --http-address=127.0.0.1:0 unless
  // `args` sets them, and waits until its
  // log says it is listening. Returns null (after printing the log) if the
  // process exits or does not start listening within a minute.
  static std::unique_ptr<ServerProcess> Start(
      std::vector<std::string> args = {});

  // Sends SIGKILL if the process still runs.
  ~ServerProcess();

  // "127.0.0.1:<port>" of the gRPC listener.
  std::string target() const;
  int grpc_port() const { return grpc_port_; }
  // The metrics HTTP port, or -1 if the server logged none.
  int metrics_port() const { return metrics_port_; }
  // The Open Inference Protocol's HTTP port, or -1 if the server logged none.
  int http_port() const { return http_port_; }
  pid_t pid() const { return pid_; }

  void Signal(int signal);
  // Waits for the process to exit; returns its exit code, or 128 + signal
  // number when killed by a signal.
  int Wait();
  // Whether the process has exited (without blocking).
  bool Exited();
  // Everything the process wrote to stdout and stderr so far.
  std::string log() const;

 private:
  ServerProcess() = default;

  pid_t pid_ = -1;
  int exit_code_ = -1;
  int grpc_port_ = -1;
  int metrics_port_ = -1;
  int http_port_ = -1;
  std::string log_path_;
};

}  // namespace relu::testing
