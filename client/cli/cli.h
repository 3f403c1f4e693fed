// relu-cli: command line front end of the client library (apply, health,
// bench). Kept apart from main() so tests can run it in-process.
#pragma once

#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "relu/client.h"

namespace relu::cli {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // a failed call, or not SERVING
inline constexpr int kExitUsage = 2;

// Runs relu-cli with `argv` (argv[0] is the program name). Reads numbers from
// `in` when `apply` has neither numbers nor --input. The progress line of
// `bench` goes to `out` only when `out_is_terminal`. Reads no environment
// variable but RELU_TARGET.
int RunCli(int argc, const char* const* argv, std::istream& in,
           std::ostream& out, std::ostream& err, bool out_is_terminal);

// Parses one number as Python's float() does for decimal text: "3", "-0.0",
// "1e-5", "nan", "inf", "-inf". INVALID_ARGUMENT otherwise.
absl::StatusOr<double> ParseNumber(const std::string& text);

// Splits text into numbers, treating '[', ']', ',' and whitespace as
// separators (so a printed list reads back).
absl::StatusOr<std::vector<double>> ParseNumberList(const std::string& text);

// A 1-D tensor of `values` rounded to `dtype` (round to nearest even).
Tensor MakeTensor(const std::vector<double>& values, DataType dtype);

// "error: <STATUS_CODE_NAME>: <message>".
std::string ErrorLine(const absl::Status& status);

}  // namespace relu::cli
