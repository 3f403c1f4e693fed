// Runs a program to completion with given stdin, capturing stdout and stderr.
#pragma once

#include <string>
#include <vector>

namespace relu::testing {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal number if killed by a signal
  std::string out;
  std::string err;
};

// Runs `argv[0]` with `argv` and exactly the environment `env` ("K=V"
// entries), feeding `stdin_text`.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::string& stdin_text = "",
                         const std::vector<std::string>& env = {});

// "127.0.0.1:<port>" of the gRPC listener, read from a relu-server log (the
// line "gRPC listening on <host>:<port>"); empty if there is none.
std::string GrpcTargetFromLog(const std::string& log);

}  // namespace relu::testing
