// What every civetweb listener of the server needs (the metrics port and the
// HTTP front door): the library initialized once, its log kept off stderr,
// and a prompt stop.
#pragma once

#include <string>

struct mg_context;
struct mg_connection;

namespace relu::metrics {

// mg_init_library(), once per process. Thread-safe.
void InitCivetweb();

// A log_message callback that keeps civetweb quiet on stderr: failures
// reach the caller as a Status.
int DropCivetwebLog(const mg_connection* conn, const char* message);

// True for "ip:port" or "[ip6]:port" with a numeric port.
bool IsListenAddress(const std::string& address);

// mg_stop(context), promptly: civetweb's master thread sees the stop flag
// only when its poll() returns, which without traffic takes up to its 2 s
// quantum, so this knocks on `address` (with the bound `port`; a wildcard
// ip means loopback) until mg_stop() is through.
void StopCivetweb(mg_context* context, const std::string& address, int port);

}  // namespace relu::metrics
