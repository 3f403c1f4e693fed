// The benchmark servers' serving loop (relu_echo_server): one service on one
// port until SIGINT or SIGTERM.
#pragma once

#include <signal.h>

#include <string>

#include "grpcpp/grpcpp.h"

namespace relu::bench {

// Blocks SIGINT and SIGTERM in the calling thread and every thread it starts
// later; call it first in main(). Returns the set for ServeUntilSignal().
sigset_t BlockStopSignals();

// Serves `service` (and the default health service, SERVING for
// relu.v1.ReluService) on `address`, prints "gRPC listening on HOST:PORT",
// and returns 0 once one of `signals` arrives and the server has shut down;
// 1 (after a message naming `name`) when it cannot listen.
int ServeUntilSignal(const char* name, const std::string& address,
                     int max_message_bytes, grpc::Service* service,
                     const sigset_t& signals);

}  // namespace relu::bench
