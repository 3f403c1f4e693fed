// relu-server's logging: spdlog's default logger on stderr, as text
// ("2026-01-02T03:04:05.678901Z info message") or as one JSON object per line
// ({"time":"...","level":"info","msg":"message"}, the message escaped), with
// gRPC's own log lines routed through it, so that every line the process
// logs has the one format.
#pragma once

#include <chrono>
#include <string>

namespace relu::service {

// `level`: trace, debug, info, warn, error or off; `format`: text or json.
// Call once, before gRPC starts. Not thread-safe.
void SetUpLogging(const std::string& level, const std::string& format);

// "2026-01-02T03:04:05.678901Z": the time of the JSON log lines and of the
// request log's.
std::string Rfc3339Micros(std::chrono::system_clock::time_point time);

}  // namespace relu::service
