#include "client/cli/cli.h"

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/cli/bench.h"
#include "client/cli/npy.h"
#include "client/cli/number_format.h"

namespace relu::cli {
namespace {

struct ConnectionFlags {
  std::string target = "localhost:50051";
  double timeout_seconds = 10.0;
  std::string tls_ca, tls_cert, tls_key;
};

struct ParamFlags {
  double max_value = 0.0;
  CLI::Option* max_value_opt = nullptr;  // set: max_value was given
  double negative_slope = 0.0;
  double threshold = 0.0;
  std::string dtype = "float32";

  ReluParams ToParams() const {
    ReluParams p;
    if (max_value_opt != nullptr && max_value_opt->count() > 0) {
      p.max_value = max_value;
    }
    p.negative_slope = negative_slope;
    p.threshold = threshold;
    return p;
  }
};

void AddConnectionFlags(CLI::App* cmd, ConnectionFlags* f) {
  cmd->add_option("--target", f->target,
                  "gRPC target of the server (env RELU_TARGET)")
      ->envname("RELU_TARGET")
      ->capture_default_str();
  cmd->add_option("--timeout", f->timeout_seconds, "Per-call deadline, seconds")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--tls-ca", f->tls_ca,
                  "PEM CA file: use TLS and verify the server with it");
  cmd->add_option("--tls-cert", f->tls_cert,
                  "PEM client certificate for mutual TLS (with --tls-key)");
  cmd->add_option("--tls-key", f->tls_key, "PEM client private key");
}

CLI::Option* AddParamFlags(CLI::App* cmd, ParamFlags* f) {
  f->max_value_opt = cmd->add_option("--max-value", f->max_value,
                                     "ReLU max_value (default: unlimited)");
  cmd->add_option("--negative-slope", f->negative_slope, "ReLU negative_slope")
      ->capture_default_str();
  cmd->add_option("--threshold", f->threshold, "ReLU threshold")
      ->capture_default_str();
  return cmd
      ->add_option("--dtype", f->dtype, "float32, float64, float16 or bfloat16")
      ->check(CLI::IsMember({"float32", "float64", "float16", "bfloat16"}))
      ->capture_default_str();
}

ClientOptions MakeOptions(const ConnectionFlags& f) {
  ClientOptions o;
  o.deadline = std::chrono::milliseconds(
      static_cast<int64_t>(std::llround(f.timeout_seconds * 1000.0)));
  if (o.deadline.count() < 1) o.deadline = std::chrono::milliseconds(1);
  o.tls_ca_file = f.tls_ca;
  o.tls_cert_file = f.tls_cert;
  o.tls_key_file = f.tls_key;
  return o;
}

int Fail(std::ostream& err, const absl::Status& status, int code) {
  err << ErrorLine(status) << "\n";
  return code;
}

// `trace`: the trace headers to send (all empty = none). When one is given,
// the server's answer to them goes to `err` as one line,
// "traceparent=<...> x-request-id=<...>", whatever the call's outcome.
int RunApply(const ConnectionFlags& conn, const ParamFlags& pf, CallTrace trace,
             const std::vector<std::string>& numbers, const std::string& input,
             const std::string& output, std::istream& in, std::ostream& out,
             std::ostream& err) {
  Tensor tensor;
  if (!input.empty()) {
    if (!numbers.empty()) {
      return Fail(
          err, absl::InvalidArgumentError("give numbers or --input, not both"),
          kExitUsage);
    }
    absl::StatusOr<Tensor> t = ReadNpyFile(input);
    if (!t.ok()) return Fail(err, t.status(), kExitUsage);
    tensor = *std::move(t);
  } else {
    std::vector<double> values;
    if (numbers.empty()) {
      std::ostringstream text;
      text << in.rdbuf();
      absl::StatusOr<std::vector<double>> parsed = ParseNumberList(text.str());
      if (!parsed.ok()) return Fail(err, parsed.status(), kExitUsage);
      values = *std::move(parsed);
      if (values.empty()) {
        return Fail(err,
                    absl::InvalidArgumentError(
                        "no numbers: give them after --, on stdin, or use "
                        "--input FILE.npy"),
                    kExitUsage);
      }
    } else {
      for (const std::string& text : numbers) {
        absl::StatusOr<double> v = ParseNumber(text);
        if (!v.ok()) return Fail(err, v.status(), kExitUsage);
        values.push_back(*v);
      }
    }
    tensor = MakeTensor(values, *ParseDataType(pf.dtype));
  }
  if (!output.empty() && tensor.dtype == DataType::kBFloat16) {
    return Fail(err,
                absl::InvalidArgumentError(".npy has no dtype for bfloat16"),
                kExitUsage);
  }
  Client client(conn.target, MakeOptions(conn));
  const bool traced = !trace.traceparent.empty() || !trace.tracestate.empty() ||
                      !trace.request_id.empty();
  absl::StatusOr<Tensor> result =
      client.Apply(std::move(tensor), pf.ToParams(), traced ? &trace : nullptr);
  if (traced && !trace.server_traceparent.empty()) {
    err << "traceparent=" << trace.server_traceparent
        << " x-request-id=" << trace.server_request_id << "\n";
  }
  if (!result.ok()) return Fail(err, result.status(), kExitFailed);
  if (!output.empty()) {
    absl::Status s = WriteNpyFile(output, *result);
    if (!s.ok()) return Fail(err, s, kExitFailed);
    return kExitOk;
  }
  out << FormatTensor(*result) << "\n";
  return kExitOk;
}

int RunHealth(const ConnectionFlags& conn, const std::string& service,
              std::ostream& out, std::ostream& err) {
  Client client(conn.target, MakeOptions(conn));
  absl::StatusOr<ServingStatus> status = client.Health(service);
  if (!status.ok()) return Fail(err, status.status(), kExitFailed);
  out << ServingStatusName(*status) << "\n";
  return *status == ServingStatus::kServing ? kExitOk : kExitFailed;
}

int RunBenchCommand(const ConnectionFlags& conn, const ParamFlags& pf,
                    BenchOptions options, bool json, std::ostream& out,
                    std::ostream& err, bool out_is_terminal) {
  Client client(conn.target, MakeOptions(conn));
  if (!client.init_status().ok()) {
    return Fail(err, client.init_status(), kExitFailed);
  }
  options.dtype = *ParseDataType(pf.dtype);
  options.params = pf.ToParams();
  options.progress = out_is_terminal && !json ? &out : nullptr;
  BenchResult result = RunBench(client, options);
  out << (json ? FormatBenchJson(result) + "\n" : FormatBenchReport(result));
  return result.errors.empty() ? kExitOk : kExitFailed;
}

}  // namespace

absl::StatusOr<double> ParseNumber(const std::string& text) {
  const std::string lower = absl::AsciiStrToLower(text);
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("not a number: '", text, "'"));
  };
  if (lower.empty() || lower.find("0x") != std::string::npos) return bad();
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(lower.c_str(), &end);
  if (end != lower.c_str() + lower.size()) return bad();
  // Overflow gives +-inf and underflow 0 (errno ERANGE), as Python's float()
  // does for "1e400" and "1e-400".
  return v;
}

absl::StatusOr<std::vector<double>> ParseNumberList(const std::string& text) {
  std::string cleaned = text;
  for (char& c : cleaned) {
    if (c == '[' || c == ']' || c == ',') c = ' ';
  }
  std::istringstream words(cleaned);
  std::vector<double> values;
  std::string word;
  while (words >> word) {
    absl::StatusOr<double> v = ParseNumber(word);
    if (!v.ok()) return v.status();
    values.push_back(*v);
  }
  return values;
}

Tensor MakeTensor(const std::vector<double>& values, DataType dtype) {
  switch (dtype) {
    case DataType::kFloat64:
      return Tensor::FromFloat64(values);
    case DataType::kFloat16:
      return Tensor::FromFloat16(
          std::vector<Float16>(values.begin(), values.end()));
    case DataType::kBFloat16:
      return Tensor::FromBFloat16(
          std::vector<BFloat16>(values.begin(), values.end()));
    default:
      return Tensor::FromFloat32(
          std::vector<float>(values.begin(), values.end()));
  }
}

std::string ErrorLine(const absl::Status& status) {
  return absl::StrCat("error: ", absl::StatusCodeToString(status.code()), ": ",
                      status.message());
}

int RunCli(int argc, const char* const* argv, std::istream& in,
           std::ostream& out, std::ostream& err, bool out_is_terminal) {
  CLI::App app{"relu-cli: apply tf.keras.layers.ReLU on a relu-serve server"};
  app.require_subcommand(1);

  // apply
  ConnectionFlags apply_conn;
  ParamFlags apply_params;
  std::vector<std::string> numbers;
  std::string input, output;
  CLI::App* apply = app.add_subcommand(
      "apply",
      "Apply ReLU to numbers (after --, or on stdin) or to a .npy file and "
      "print the result as a Python list");
  AddConnectionFlags(apply, &apply_conn);
  CLI::Option* dtype_opt = AddParamFlags(apply, &apply_params);
  CLI::Option* input_opt = apply->add_option(
      "--input", input, ".npy file to read (float16/32/64, any shape)");
  dtype_opt->excludes(input_opt);
  apply->add_option("--output", output,
                    ".npy file to write the result to (same dtype and shape) "
                    "instead of printing it");
  apply->add_option("numbers", numbers, "Input numbers (put them after --)");
  CallTrace apply_trace;
  apply->add_option("--traceparent", apply_trace.traceparent,
                    "W3C traceparent to send (00-<trace-id>-<parent-id>-"
                    "<flags>); the server's answer is printed on stderr");
  apply->add_option("--tracestate", apply_trace.tracestate,
                    "W3C tracestate to send with --traceparent");
  apply->add_option("--request-id", apply_trace.request_id,
                    "x-request-id to send; the server logs the call under it");

  // health
  ConnectionFlags health_conn;
  std::string service;
  CLI::App* health = app.add_subcommand(
      "health",
      "Print the grpc.health.v1 serving status; exit 0 only when SERVING");
  AddConnectionFlags(health, &health_conn);
  health->add_option("--service", service,
                     "Service to ask about (\"\" = the whole server, or "
                     "relu.v1.ReluService)");

  // bench
  ConnectionFlags bench_conn;
  ParamFlags bench_params;
  BenchOptions bench_options;
  bool json = false;
  CLI::App* bench = app.add_subcommand(
      "bench",
      "Load generator: keep --concurrency calls in flight (closed loop), or "
      "send --rate calls a second (open loop), and report throughput and "
      "latency");
  AddConnectionFlags(bench, &bench_conn);
  AddParamFlags(bench, &bench_params);
  bench
      ->add_option("--concurrency", bench_options.concurrency,
                   "Calls in flight (with --rate: at most)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  bench
      ->add_option("--rate", bench_options.rate,
                   "Open loop: calls due a second, sent when due whatever the "
                   "server's pace; latency counts from when a call was due. "
                   "0 = closed loop")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  std::string arrivals = "constant";
  bench
      ->add_option("--arrivals", arrivals,
                   "Open loop: constant (evenly spaced) or poisson")
      ->check(CLI::IsMember({"constant", "poisson"}))
      ->capture_default_str();
  CLI::Option* duration_opt =
      bench
          ->add_option("--duration", bench_options.duration_seconds,
                       "Seconds to run")
          ->check(CLI::PositiveNumber)
          ->capture_default_str();
  bench
      ->add_option("--requests", bench_options.requests,
                   "Send this many calls instead of running for --duration")
      ->check(CLI::PositiveNumber)
      ->excludes(duration_opt);
  bench
      ->add_option("--elements", bench_options.elements,
                   "Elements per request; several (comma-separated) give a "
                   "mix of sizes used in turn")
      ->delimiter(',')
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  bench->add_flag("--json", json, "Print one JSON object instead of a report");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? kExitOk : kExitUsage;
  }

  if (apply->parsed()) {
    return RunApply(apply_conn, apply_params, apply_trace, numbers, input,
                    output, in, out, err);
  }
  if (health->parsed()) return RunHealth(health_conn, service, out, err);
  bench_options.arrivals =
      arrivals == "poisson" ? Arrivals::kPoisson : Arrivals::kConstant;
  return RunBenchCommand(bench_conn, bench_params, bench_options, json, out,
                         err, out_is_terminal);
}

}  // namespace relu::cli
