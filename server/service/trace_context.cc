#include "server/service/trace_context.h"

#include <algorithm>
#include <cstdint>
#include <random>

namespace relu::service {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool AllZero(std::string_view s) {
  return s.find_first_not_of('0') == std::string_view::npos;
}

}  // namespace

bool ParseTraceparent(std::string_view value, Traceparent* out) {
  // version "-" trace-id "-" parent-id "-" flags: 2+1+32+1+16+1+2 = 55.
  constexpr size_t kLength = 55;
  if (value.size() < kLength) return false;
  const std::string_view version = value.substr(0, 2);
  if (!IsLowerHex(version) || version == "ff") return false;
  // Version 00 is exactly 55 characters; a later version may add fields,
  // each after a '-'.
  if (version == "00" ? value.size() != kLength
                      : value.size() > kLength && value[kLength] != '-') {
    return false;
  }
  if (value[2] != '-' || value[35] != '-' || value[52] != '-') return false;
  const std::string_view trace_id = value.substr(3, 32);
  const std::string_view parent_id = value.substr(36, 16);
  const std::string_view flags = value.substr(53, 2);
  if (!IsLowerHex(trace_id) || AllZero(trace_id) || !IsLowerHex(parent_id) ||
      AllZero(parent_id) || !IsLowerHex(flags)) {
    return false;
  }
  out->trace_id = std::string(trace_id);
  out->parent_id = std::string(parent_id);
  out->flags = std::string(flags);
  return true;
}

std::string RandomHexId(size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  thread_local std::mt19937_64 random([] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }());
  std::string id(2 * bytes, '0');
  uint64_t any = 0;  // the OR of every word drawn: 0 only for an all-zero id
  do {
    any = 0;
    // Eight random bytes per draw, two hex digits per byte.
    for (size_t i = 0; i < bytes; i += 8) {
      uint64_t word = random();
      any |= word & (bytes - i >= 8 ? ~uint64_t{0}
                                    : (uint64_t{1} << (8 * (bytes - i))) - 1);
      for (size_t j = i; j < std::min(bytes, i + 8); ++j, word >>= 8) {
        id[2 * j] = kHex[(word >> 4) & 0xf];
        id[2 * j + 1] = kHex[word & 0xf];
      }
    }
  } while (any == 0);
  return id;
}

TraceContext TraceContext::FromHeaders(std::string_view traceparent,
                                       std::string_view tracestate,
                                       std::string_view request_id) {
  TraceContext context;
  Traceparent parsed;
  if (!traceparent.empty() && ParseTraceparent(traceparent, &parsed)) {
    context.trace_id = std::move(parsed.trace_id);
    context.parent_id = std::move(parsed.parent_id);
    // Version 00 defines one flag (sampled); the others are passed as 0.
    context.flags = (std::stoi(parsed.flags, nullptr, 16) & 1) ? "01" : "00";
    if (tracestate.size() <= kMaxTracestateBytes) {
      context.tracestate = std::string(tracestate);
    }
  }
  bool usable = !request_id.empty() && request_id.size() <= kMaxRequestIdBytes;
  for (char c : request_id) {
    if (c < 0x20 || c > 0x7e) usable = false;
  }
  if (usable) context.request_id = std::string(request_id);
  context.request_id_sent = !request_id.empty();
  context.headers_sent =
      !traceparent.empty() || !tracestate.empty() || !request_id.empty();
  return context;
}

void TraceContext::EnsureIds() {
  if (trace_id.empty()) trace_id = RandomHexId(16);
  if (span_id.empty()) span_id = RandomHexId(8);
  if (request_id.empty()) request_id = trace_id;
}

std::string TraceContext::ResponseTraceparent() const {
  std::string out;
  out.reserve(3 + trace_id.size() + 1 + span_id.size() + 1 + flags.size());
  out.append("00-").append(trace_id).append("-").append(span_id);
  out.append("-").append(flags);
  return out;
}

}  // namespace relu::service
