#include "tests/client/python_numpy.h"

#include <unistd.h>

#include <cstdio>

#include "tests/testing/subprocess.h"

namespace relu::testing {

std::optional<std::string> RunPython(const std::string& script) {
  const ProcessResult result = RunProcess({"/usr/bin/python3", "-"}, script);
  if (result.exit_code != 0) {
    std::fprintf(stderr, "python3 exited %d:\n%s", result.exit_code,
                 result.err.c_str());
    return std::nullopt;
  }
  return result.out;
}

bool HaveNumpy() {
  static const bool have = [] {
    if (access("/usr/bin/python3", X_OK) != 0) return false;
    std::optional<std::string> out = RunPython("import numpy\nprint('ok')\n");
    return out.has_value() && *out == "ok\n";
  }();
  return have;
}

}  // namespace relu::testing
