#include "server/service/logging.h"

#include <time.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>

#include "grpc/support/log.h"
#include "nlohmann/json.hpp"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace relu::service {

std::string Rfc3339Micros(std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const time_t seconds = static_cast<time_t>(
      std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count());
  const long micros = static_cast<long>(
      std::chrono::duration_cast<std::chrono::microseconds>(since_epoch)
          .count() %
      1'000'000);
  struct tm utc;
  gmtime_r(&seconds, &utc);
  char text[40];
  const size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  snprintf(text + n, sizeof(text) - n, ".%06ldZ", micros);
  return text;
}

namespace {

// {"time":"2026-01-02T03:04:05.678901Z","level":"info","msg":"..."}: the
// text pattern's fields, the message escaped as a JSON string.
class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg,
              spdlog::memory_buf_t& dest) override {
    const std::string time = Rfc3339Micros(msg.time);
    const spdlog::string_view_t level =
        spdlog::level::to_string_view(msg.level);
    // Invalid UTF-8 (a message quoting bytes from outside) is replaced, not
    // an exception.
    const std::string text =
        nlohmann::json(std::string(msg.payload.data(), msg.payload.size()))
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    const std::string line =
        std::string("{\"time\":\"") + time + "\",\"level\":\"" +
        std::string(level.data(), level.size()) + "\",\"msg\":" + text + "}\n";
    dest.append(line.data(), line.data() + line.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

// The server's logger for gRPC's lines. Never destroyed: gRPC's threads may
// log while the process exits, after spdlog's registry is gone.
spdlog::logger* grpc_logger = nullptr;

// gRPC's log lines ("ssl_transport_security.cc:846] Invalid cert chain
// file."), through the server's logger at their severity.
void LogFromGrpc(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::info;
  switch (args->severity) {
    case GPR_LOG_SEVERITY_DEBUG:
      level = spdlog::level::debug;
      break;
    case GPR_LOG_SEVERITY_INFO:
      level = spdlog::level::info;
      break;
    case GPR_LOG_SEVERITY_ERROR:
      level = spdlog::level::err;
      break;
  }
  const char* file = args->file == nullptr ? "" : args->file;
  if (const char* slash = std::strrchr(file, '/'); slash != nullptr) {
    file = slash + 1;
  }
  grpc_logger->log(level, "grpc: {}:{}] {}", file, args->line,
                   args->message == nullptr ? "" : args->message);
}

}  // namespace

void SetUpLogging(const std::string& level, const std::string& format) {
  auto logger = spdlog::stderr_logger_mt("relu-server");
  if (format == "json") {
    logger->set_formatter(std::make_unique<JsonFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v",
                        spdlog::pattern_time_type::utc);
  }
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  // A copy that lives on (its sink too) for LogFromGrpc.
  grpc_logger = new spdlog::logger(*logger);
  gpr_set_log_function(LogFromGrpc);
}

}  // namespace relu::service
