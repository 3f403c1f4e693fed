#include "server/metrics/civetweb.h"

#include <civetweb.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

namespace relu::metrics {
namespace {

// Opens and closes one TCP connection to `address`'s host at `port`. Errors
// are ignored.
void Poke(const std::string& address, int port) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) !=
      0) {
    return;
  }
  const int fd = socket(found->ai_family, SOCK_STREAM, 0);
  if (fd >= 0) {
    connect(fd, found->ai_addr, found->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(found);
}

}  // namespace

void InitCivetweb() {
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
}

int DropCivetwebLog(const mg_connection*, const char*) { return 1; }

bool IsListenAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  return !address.empty() && colon != std::string::npos &&
         colon + 1 != address.size() &&
         address.find_first_not_of("0123456789", colon + 1) ==
             std::string::npos;
}

void StopCivetweb(mg_context* context, const std::string& address, int port) {
  std::atomic<bool> stopped{false};
  std::thread stopper([context, &stopped] {
    mg_stop(context);
    stopped = true;
  });
  while (!stopped) {
    Poke(address, port);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stopper.join();
}

}  // namespace relu::metrics
