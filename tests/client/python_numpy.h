// Runs /usr/bin/python3 with NumPy for tests that compare against NumPy.
#pragma once

#include <optional>
#include <string>

namespace relu::testing {

// Whether /usr/bin/python3 can import numpy.
bool HaveNumpy();
// Runs `script` with /usr/bin/python3 and returns its stdout, or nullopt if
// it failed (exit status non-zero).
std::optional<std::string> RunPython(const std::string& script);

}  // namespace relu::testing
