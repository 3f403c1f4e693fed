// A call's identity for tracing and logs, free of any protocol: the W3C Trace
// Context (https://www.w3.org/TR/trace-context/) a caller sent in its
// `traceparent` and `tracestate` headers (gRPC metadata, HTTP headers), its
// `x-request-id`, and the ids the server makes up when they are missing or
// invalid. A front door reads the three header values and calls
// TraceContext::FromHeaders(); the ids then appear in the request log and go
// back to the caller when it sent trace headers or the call failed (see
// TraceContext::ReturnsIds() and ResponseTraceparent()).
#pragma once

#include <string>
#include <string_view>

namespace relu::service {

// The header names, lower case as gRPC metadata and HTTP/2 carry them.
inline constexpr char kTraceparentHeader[] = "traceparent";
inline constexpr char kTracestateHeader[] = "tracestate";
inline constexpr char kRequestIdHeader[] = "x-request-id";

// Longest x-request-id kept (longer ones are replaced by a generated id), and
// longest tracestate kept (the W3C limit is 32 members; longer ones are
// dropped, as the spec allows).
inline constexpr size_t kMaxRequestIdBytes = 128;
inline constexpr size_t kMaxTracestateBytes = 512;

// A parsed `traceparent`: version 00 only (a higher version is read as 00
// reads it: its first four fields, as the spec requires of a 00 parser).
struct Traceparent {
  std::string trace_id;   // 32 lower-case hex digits, not all zero
  std::string parent_id;  // 16 lower-case hex digits, not all zero
  std::string flags;      // 2 lower-case hex digits
};

// Parses `value` per W3C Trace Context level 1: "00-<trace-id>-<parent-id>-
// <flags>" with lower-case hex, trace-id and parent-id not all zero, version
// not "ff"; a future version (01..fe) may carry more fields after a '-'.
// False for anything else (upper-case hex included).
bool ParseTraceparent(std::string_view value, Traceparent* out);

// `bytes` random bytes as lower-case hex, never all zero. Thread-safe.
std::string RandomHexId(size_t bytes);

struct TraceContext {
  // The trace the call belongs to: the caller's, or a new random one (made
  // by EnsureIds(): empty until then when the caller sent none).
  std::string trace_id;
  // The caller's span (its traceparent's parent-id); empty when the caller
  // sent no valid traceparent.
  std::string parent_id;
  // This call's own span id, random: the parent-id of the traceparent sent
  // back, so that a caller can tell which server call answered. Empty until
  // EnsureIds().
  std::string span_id;
  std::string flags = "00";  // the caller's trace-flags (sampled = 01)
  std::string tracestate;    // passed through as received (empty = none)
  // The caller's x-request-id when it sent a usable one, else (after
  // EnsureIds()) the trace id.
  std::string request_id;
  // Whether the caller sent an x-request-id (usable or not): only then does
  // it go back (the trace id, when it stands in, is in the traceparent).
  bool request_id_sent = false;
  // Whether the caller sent any of the three headers (valid or not).
  bool headers_sent = false;

  // Fills a context from the header values (empty = absent). An invalid
  // traceparent is ignored (a new trace starts, and tracestate is dropped
  // with it, as the spec requires); an x-request-id that is empty, longer
  // than kMaxRequestIdBytes or holds a byte outside printable ASCII is
  // replaced by the trace id. The ids the caller did not give are made by
  // EnsureIds(), when something needs them. Thread-safe.
  static TraceContext FromHeaders(std::string_view traceparent,
                                  std::string_view tracestate,
                                  std::string_view request_id);

  // Makes the ids the caller did not give: a random trace id and span id,
  // and the request id from the trace id. Idempotent. A call's ids are
  // needed only when they are logged or go back, so a call that needs
  // neither never makes them (two random ids and their strings are about
  // 1,400 instructions of a 16-element call's 58,000).
  void EnsureIds();

  // Whether the ids go back to the caller (gRPC trailers, HTTP headers):
  // when it sent any trace header, or when the call `failed` (so that a
  // failed call can be found in the request log). A caller that sends no
  // header and whose call succeeds gets none: one trailer costs a
  // 16-element gRPC call about 3,000 instructions, most of them gRPC's, and
  // about 13 % of the calls/s (bench/h2load_bench.py --trailer-echo), as
  // Envoy returns its x-request-id only when configured to.
  bool ReturnsIds(bool failed) const { return headers_sent || failed; }

  // "00-<trace_id>-<span_id>-<flags>": what the server returns to the caller
  // (and would pass on downstream). After EnsureIds().
  std::string ResponseTraceparent() const;
};

}  // namespace relu::service
