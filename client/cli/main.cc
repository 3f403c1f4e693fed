// relu-cli: see client/cli/cli.h.
#include <unistd.h>

#include <iostream>

#include "absl/synchronization/mutex.h"
#include "client/cli/cli.h"

int main(int argc, char** argv) {
  // Debian's abseil is built without NDEBUG, so every absl::Mutex lock that
  // gRPC takes records an edge in a lock graph (a deadlock detector meant
  // for debugging), as relu-server found (server/main.cc). Off, as release
  // builds of abseil have it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return relu::cli::RunCli(argc, argv, std::cin, std::cout, std::cerr,
                           isatty(STDOUT_FILENO) != 0);
}
