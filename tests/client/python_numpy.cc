#include "tests/client/python_numpy.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace relu::testing {

std::optional<std::string> RunPython(const std::string& script) {
  char path[] = "/tmp/relu_client_test_XXXXXX.py";
  const int fd = mkstemps(path, 3);
  if (fd < 0) return std::nullopt;
  close(fd);
  {
    std::ofstream out(path);
    out << script;
  }
  const std::string command = std::string("/usr/bin/python3 ") + path;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    unlink(path);
    return std::nullopt;
  }
  std::string output;
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0)
    output.append(buffer, n);
  const int status = pclose(pipe);
  unlink(path);
  if (status != 0) return std::nullopt;
  return output;
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
