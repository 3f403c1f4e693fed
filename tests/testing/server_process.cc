#include "tests/testing/server_process.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace relu::testing {
namespace {

bool HasFlag(const std::vector<std::string>& args, const std::string& flag) {
  for (const std::string& arg : args) {
    if (arg == flag || arg.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

int FindPort(const std::string& log, const std::string& what) {
  std::smatch match;
  // Only complete lines: the log may be read while a line is half written.
  // The line is text, or a JSON object (--log-format=json).
  std::regex pattern(what + " listening on [^ \\n]*:([0-9]+)(\"\\})?\\n");
  if (!std::regex_search(log, match, pattern)) return -1;
  return std::stoi(match[1]);
}

}  // namespace

const char* ServerBinaryPath() { return RELU_SERVER_PATH; }

std::unique_ptr<ServerProcess> ServerProcess::Start(
    std::vector<std::string> args) {
  if (!HasFlag(args, "--grpc-address")) {
    args.push_back("--grpc-address=127.0.0.1:0");
  }
  if (!HasFlag(args, "--metrics-address")) {
    args.push_back("--metrics-address=127.0.0.1:0");
  }
  if (!HasFlag(args, "--http-address")) {
    args.push_back("--http-address=127.0.0.1:0");
  }
  std::unique_ptr<ServerProcess> server(new ServerProcess());
  char log_template[] = "/tmp/relu-server-log-XXXXXX";
  int log_fd = mkstemp(log_template);
  if (log_fd < 0) return nullptr;
  server->log_path_ = log_template;

  std::vector<char*> argv;
  std::string binary = ServerBinaryPath();
  argv.push_back(binary.data());
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    dup2(log_fd, STDOUT_FILENO);
    dup2(log_fd, STDERR_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  if (pid < 0) return nullptr;
  server->pid_ = pid;

  auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (std::chrono::steady_clock::now() < give_up) {
    std::string log = server->log();
    // The server logs its metrics and HTTP addresses (if any) before the
    // gRPC one.
    server->grpc_port_ = FindPort(log, "gRPC");
    if (server->grpc_port_ > 0) {
      server->metrics_port_ = FindPort(log, "metrics");
      server->http_port_ = FindPort(log, "HTTP");
      return server;
    }
    if (server->Exited()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  fprintf(stderr, "relu-server did not start listening; its log:\n%s\n",
          server->log().c_str());
  return nullptr;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && !Exited()) {
    kill(pid_, SIGKILL);
    Wait();
  }
  if (!log_path_.empty()) unlink(log_path_.c_str());
}

std::string ServerProcess::target() const {
  return "127.0.0.1:" + std::to_string(grpc_port_);
}

void ServerProcess::Signal(int signal) {
  if (exit_code_ < 0) kill(pid_, signal);
}

int ServerProcess::Wait() {
  if (exit_code_ >= 0) return exit_code_;
  int status = 0;
  if (waitpid(pid_, &status, 0) != pid_) return -1;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

bool ServerProcess::Exited() {
  if (exit_code_ >= 0) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

std::string ServerProcess::log() const {
  std::ifstream in(log_path_);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace relu::testing
