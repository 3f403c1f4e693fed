// relu-server's own TCP listener for the gRPC port. gRPC 1.51's listener
// stops for good after one accept() fails for lack of descriptors (EMFILE;
// CVE-2023-4785, fixed in later gRPC releases than Debian's). This one
// accepts on a thread of its own, closes connections past its descriptor cap
// at once, backs off and retries when descriptors run out, and hands every
// connection it keeps to gRPC through the experimental external connection
// acceptor, which serves it like one of its own.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/server_builder.h"

namespace relu::service {

class TcpListener {
 public:
  // Binds and listens on `address`, "host:port" or "[ipv6]:port" (port 0
  // picks a free one; a name such as localhost binds each of its addresses,
  // all on one port). UNAVAILABLE when it cannot bind; INVALID_ARGUMENT for
  // an address that is not host:port (gRPC's own listener takes those).
  static absl::StatusOr<std::unique_ptr<TcpListener>> Listen(
      const std::string& address);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  int port() const { return port_; }

  // Accepts until Stop(), handing connections to `acceptor`. A connection
  // whose descriptor number is `max_descriptor` or more is closed at once
  // (descriptors are handed out lowest first, so this bounds the open ones).
  void Start(
      std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor,
      size_t max_descriptor);
  // Stops accepting and closes the listening sockets. Idempotent.
  void Stop();

  // False while the process is out of descriptors (accept() failed with
  // EMFILE or ENFILE, and connections wait in the backlog); true again once
  // one is accepted, or none waits.
  bool accepting() const { return accepting_.load(); }
  // Connections closed at accept for being past the cap, since the start.
  size_t refused() const { return refused_.load(); }

 private:
  TcpListener(std::vector<int> fds, int port);
  void Run();

  std::vector<int> fds_;
  int port_ = 0;
  int wake_fd_ = -1;  // eventfd: Stop() wakes the accepting thread
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  size_t max_descriptor_ = 0;
  std::atomic<bool> accepting_{true};
  std::atomic<size_t> refused_{0};
  std::thread thread_;
};

}  // namespace relu::service
