#include "server/service/listener.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace relu::service {
namespace {

// How long accepting pauses after the process ran out of descriptors.
constexpr int kBackoffMillis = 100;

bool SplitHostPort(const std::string& address, std::string* host,
                   std::string* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return false;
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  int number = 0;
  if (!absl::SimpleAtoi(*port, &number) || number < 0 || number > 65535) {
    return false;
  }
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  } else if (host->find(':') != std::string::npos) {
    return false;  // "unix:...", "ipv4:..." and other gRPC URIs
  }
  return !host->empty();
}

int BoundPort(int fd) {
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
    return 0;
  }
  if (bound.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

void SetPort(sockaddr* address, int port) {
  if (address->sa_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(address)->sin6_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in*>(address)->sin_port = htons(port);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpListener>> TcpListener::Listen(
    const std::string& address) {
  std::string host, port_text;
  if (!SplitHostPort(address, &host, &port_text)) {
    return absl::InvalidArgumentError(
        absl::StrCat(address, " is not host:port"));
  }
  addrinfo hints{};
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int error = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found);
      error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", host, ": ", gai_strerror(error)));
  }
  std::vector<int> fds;
  int port = 0;
  absl::Status status;
  for (addrinfo* a = found; a != nullptr && status.ok(); a = a->ai_next) {
    const int fd =
        socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int on = 1, off = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    // Accepted connections inherit it; gRPC wants it on every connection.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    if (a->ai_family == AF_INET6) {
      // "[::]" takes IPv4 clients too, as gRPC's own listener does.
      const bool wildcard = IN6_IS_ADDR_UNSPECIFIED(
          &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, wildcard ? &off : &on,
                 sizeof(on));
    }
    if (port != 0) SetPort(a->ai_addr, port);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 ||
        listen(fd, SOMAXCONN) != 0) {
      const int error = errno;
      close(fd);
      // A name with both an IPv4 and an IPv6 address on a machine without
      // one of them: keep what bound.
      if (error == EADDRNOTAVAIL && a->ai_next != nullptr) continue;
      if (error == EADDRNOTAVAIL && !fds.empty()) continue;
      status = absl::UnavailableError(
          absl::StrCat("cannot listen on ", address, ": ", strerror(error)));
      break;
    }
    port = BoundPort(fd);
    fds.push_back(fd);
  }
  freeaddrinfo(found);
  if (status.ok() && fds.empty()) {
    status = absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ": no usable address"));
  }
  if (!status.ok()) {
    for (int fd : fds) close(fd);
    return status;
  }
  return std::unique_ptr<TcpListener>(new TcpListener(std::move(fds), port));
}

TcpListener::TcpListener(std::vector<int> fds, int port)
    : fds_(std::move(fds)),
      port_(port),
      wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

TcpListener::~TcpListener() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void TcpListener::Start(
    std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor,
    size_t max_descriptor) {
  acceptor_ = std::move(acceptor);
  max_descriptor_ = max_descriptor;
  thread_ = std::thread([this] { Run(); });
}

void TcpListener::Stop() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
    thread_.join();
  }
  for (int fd : fds_) close(fd);
  fds_.clear();
}

void TcpListener::Run() {
  std::vector<pollfd> polled;
  polled.push_back({wake_fd_, POLLIN, 0});
  for (int fd : fds_) polled.push_back({fd, POLLIN, 0});
  bool backing_off = false;
  for (;;) {
    // While backing off, wait for the wake-up only.
    const nfds_t count = backing_off ? 1 : polled.size();
    const int ready =
        poll(polled.data(), count, backing_off ? kBackoffMillis : -1);
    if (ready < 0 && errno != EINTR) return;
    if (polled[0].revents != 0) return;  // Stop()
    backing_off = false;
    for (size_t i = 1; i < polled.size(); ++i) {
      if (polled[i].revents == 0) continue;
      for (;;) {
        const int fd = accept4(polled[i].fd, nullptr, nullptr,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
          if (errno == EINTR || errno == ECONNABORTED) continue;
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
              errno == ENOMEM) {
            // The connection stays in the backlog; try again shortly.
            accepting_ = false;
            backing_off = true;
          } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            accepting_ = true;  // all taken
          }
          break;
        }
        if (static_cast<size_t>(fd) >= max_descriptor_) {
          // Counted first: the peer sees the close.
          refused_.fetch_add(1, std::memory_order_relaxed);
          close(fd);
          continue;
        }
        accepting_ = true;
        grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters
            connection;
        connection.listener_fd = polled[i].fd;
        connection.fd = fd;
        acceptor_->HandleNewConnection(&connection);
      }
    }
  }
}

}  // namespace relu::service
