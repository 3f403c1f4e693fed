// Runs programs to completion for tests: given stdin, captured stdout and
// stderr; and finds them on $PATH.
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

// The absolute path of `name` on $PATH, or "" if there is none.
std::string FindExecutable(const std::string& name);

}  // namespace relu::testing
