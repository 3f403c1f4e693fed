#include "tests/metrics/prometheus_process.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/testing/free_port.h"
#include "tests/testing/http_client.h"

namespace relu::metrics::testing {
namespace {

using ::relu::testing::HttpRequest;
using ::relu::testing::PickFreePort;
using ::relu::testing::UrlEncode;

constexpr auto kPollInterval = std::chrono::milliseconds(100);
// Hang guards, not performance bounds: a healthy Prometheus is ready in about
// a second and shows a scrape within 2..6 s.
constexpr auto kStartGuard = std::chrono::seconds(60);
constexpr auto kScrapeGuard = std::chrono::seconds(120);

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// The string member `key` of `object`, or "" when absent or not a string.
std::string StringAt(const nlohmann::json& object, const char* key) {
  const auto member = object.find(key);
  if (member == object.end() || !member->is_string()) return "";
  return member->get<std::string>();
}

bool Exited(pid_t pid) {
  int status = 0;
  return waitpid(pid, &status, WNOHANG) == pid;
}

}  // namespace

double UnixSeconds() {
  return std::chrono::duration<double>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<std::unique_ptr<PrometheusProcess>> PrometheusProcess::Start(
    const std::string& binary, const std::vector<std::string>& targets) {
  char dir_template[] = "/tmp/relu-prometheus-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    return absl::InternalError("mkdtemp failed");
  }
  std::unique_ptr<PrometheusProcess> prometheus(new PrometheusProcess());
  prometheus->dir_ = dir_template;
  prometheus->targets_ = targets.size();
  {
    std::ofstream config(prometheus->dir_ + "/prom.yml");
    config << "global:\n"
              "  scrape_interval: 1s\n"
              "  scrape_timeout: 1s\n"
              "  evaluation_interval: 1s\n"
              "scrape_configs:\n"
              "  - job_name: "
           << kJob << "\n    static_configs:\n      - targets: [";
    for (size_t i = 0; i < targets.size(); ++i) {
      config << (i ? ", " : "") << "'" << targets[i] << "'";
    }
    config << "]\n";
  }

  // The port is picked, then bound by Prometheus: retry if another process
  // took it in between.
  for (int attempt = 0; attempt < 3; ++attempt) {
    prometheus->port_ = PickFreePort();
    const std::string log_path = prometheus->dir_ + "/prometheus.log";
    std::vector<std::string> args = {
        binary, "--config.file=" + prometheus->dir_ + "/prom.yml",
        "--storage.tsdb.path=" + prometheus->dir_ + "/tsdb",
        "--web.listen-address=127.0.0.1:" + std::to_string(prometheus->port_),
        "--log.level=warn"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      FILE* log = std::fopen(log_path.c_str(), "a");
      if (log != nullptr) {
        dup2(fileno(log), STDOUT_FILENO);
        dup2(fileno(log), STDERR_FILENO);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (pid < 0) return absl::InternalError("fork failed");
    prometheus->pid_ = pid;

    const auto give_up = std::chrono::steady_clock::now() + kStartGuard;
    bool exited = false;
    while (std::chrono::steady_clock::now() < give_up) {
      auto ready = HttpRequest(prometheus->port_, "/-/ready");
      if (ready.ok() && ready->status == 200) return prometheus;
      if (Exited(pid)) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(kPollInterval);
    }
    prometheus->pid_ = -1;
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      break;
    }
  }
  return absl::UnavailableError("prometheus did not become ready; its log:\n" +
                                prometheus->log());
}

PrometheusProcess::~PrometheusProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string PrometheusProcess::log() const {
  return ReadAll(dir_ + "/prometheus.log");
}

absl::StatusOr<nlohmann::json> PrometheusProcess::Query(
    const std::string& promql) const {
  auto response =
      HttpRequest(port_, "/api/v1/query?query=" + UrlEncode(promql));
  if (!response.ok()) return response.status();
  const auto json = nlohmann::json::parse(response->body, nullptr,
                                          /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return absl::InternalError(
        "HTTP " + std::to_string(response->status) +
        ", not a JSON object: " + response->body.substr(0, 200));
  }
  if (StringAt(json, "status") != "success") {
    return absl::InvalidArgumentError("query " + promql + " refused (HTTP " +
                                      std::to_string(response->status) +
                                      "): " + StringAt(json, "errorType") +
                                      ": " + StringAt(json, "error"));
  }
  const auto data = json.find("data");
  if (data == json.end() || !data->is_object()) {
    return absl::InternalError("no data in " + promql);
  }
  return *data;
}

absl::StatusOr<std::optional<double>> PrometheusProcess::QueryValue(
    const std::string& promql) const {
  auto data = Query(promql);
  if (!data.ok()) return data.status();
  const auto result = data->find("result");
  if (StringAt(*data, "resultType") != "vector" || result == data->end() ||
      !result->is_array()) {
    return absl::InternalError(promql + " is not an instant vector");
  }
  if (result->empty()) return std::optional<double>();
  if (result->size() > 1) {
    return absl::InternalError(promql + " returned " +
                               std::to_string(result->size()) +
                               " series, expected one");
  }
  const nlohmann::json& sample = (*result)[0];
  const auto value = sample.is_object() ? sample.find("value") : sample.end();
  if (value == sample.end() || !value->is_array() || value->size() != 2 ||
      !(*value)[1].is_string()) {
    return absl::InternalError(promql + ": malformed sample");
  }
  return std::optional<double>(std::stod((*value)[1].get<std::string>()));
}

bool PrometheusProcess::WaitForScrapeAfter(double unix_seconds) const {
  // The sample timestamp of `up` is the start of its target's last scrape.
  const std::string job = std::string("{job=\"") + kJob + "\"}";
  const std::string scraped_after = "count(timestamp(up" + job + ") > " +
                                    std::to_string(unix_seconds) + " and up" +
                                    job + " == 1)";
  const auto give_up = std::chrono::steady_clock::now() + kScrapeGuard;
  while (std::chrono::steady_clock::now() < give_up) {
    auto count = QueryValue(scraped_after);
    if (count.ok() && count->has_value() &&
        **count == static_cast<double>(targets_)) {
      return true;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return false;
}

}  // namespace relu::metrics::testing
