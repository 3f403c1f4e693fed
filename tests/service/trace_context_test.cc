// W3C traceparent parsing and the ids a call gets (trace_context.h).
#include "server/service/trace_context.h"

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace relu::service {
namespace {

constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kParentId[] = "00f067aa0ba902b7";
constexpr char kValid[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

bool IsLowerHex(const std::string& s, size_t length) {
  return s.size() == length &&
         s.find_first_not_of("0123456789abcdef") == std::string::npos &&
         s.find_first_not_of('0') != std::string::npos;
}

TEST(TraceparentTest, ParsesTheSpecExample) {
  Traceparent parsed;
  ASSERT_TRUE(ParseTraceparent(kValid, &parsed));
  EXPECT_EQ(parsed.trace_id, kTraceId);
  EXPECT_EQ(parsed.parent_id, kParentId);
  EXPECT_EQ(parsed.flags, "01");
}

TEST(TraceparentTest, AcceptsAFutureVersionWithMoreFields) {
  Traceparent parsed;
  EXPECT_TRUE(ParseTraceparent(
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-next",
      &parsed));
  EXPECT_EQ(parsed.trace_id, kTraceId);
  EXPECT_TRUE(ParseTraceparent(
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", &parsed));
}

TEST(TraceparentTest, RejectsWhatTheSpecRejects) {
  for (const char* bad : {
           "",
           "00",
           // version ff, upper-case hex, non-hex version
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
           "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           // all-zero trace id and parent id
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
           // lengths and separators
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
           // version 00 has exactly four fields
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
           // a future version's extra data starts with '-'
           "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
       }) {
    Traceparent parsed;
    EXPECT_FALSE(ParseTraceparent(bad, &parsed)) << bad;
  }
}

// A context from these headers with its ids made, as a call has them once
// they are logged or go back.
TraceContext WithIds(std::string_view traceparent, std::string_view tracestate,
                     std::string_view request_id) {
  TraceContext context =
      TraceContext::FromHeaders(traceparent, tracestate, request_id);
  context.EnsureIds();
  return context;
}

TEST(TraceContextTest, KeepsTheCallersTraceWithASpanOfItsOwn) {
  const TraceContext context = WithIds(kValid, "vendor=value", "req-1");
  EXPECT_EQ(context.trace_id, kTraceId);
  EXPECT_EQ(context.parent_id, kParentId);
  EXPECT_EQ(context.flags, "01");
  EXPECT_EQ(context.tracestate, "vendor=value");
  EXPECT_EQ(context.request_id, "req-1");
  EXPECT_TRUE(context.request_id_sent);
  EXPECT_TRUE(IsLowerHex(context.span_id, 16));
  EXPECT_NE(context.span_id, kParentId);
  EXPECT_EQ(context.ResponseTraceparent(),
            std::string("00-") + kTraceId + "-" + context.span_id + "-01");
}

TEST(TraceContextTest, StartsATraceWhenThereIsNoneOrItIsInvalid) {
  for (const char* traceparent :
       {"", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}) {
    const TraceContext context = WithIds(traceparent, "vendor=value", "");
    EXPECT_TRUE(IsLowerHex(context.trace_id, 32)) << context.trace_id;
    EXPECT_TRUE(IsLowerHex(context.span_id, 16)) << context.span_id;
    EXPECT_TRUE(context.parent_id.empty());
    EXPECT_EQ(context.flags, "00");
    EXPECT_TRUE(context.tracestate.empty());  // dropped with the traceparent
    EXPECT_EQ(context.request_id, context.trace_id);
    EXPECT_FALSE(context.request_id_sent);  // so it is not sent back
  }
  EXPECT_NE(WithIds("", "", "").trace_id, WithIds("", "", "").trace_id);
}

TEST(TraceContextTest, IdsAreMadeOnlyWhenNeededAndThenKept) {
  TraceContext context = TraceContext::FromHeaders("", "", "");
  EXPECT_TRUE(context.trace_id.empty());
  EXPECT_TRUE(context.span_id.empty());
  EXPECT_TRUE(context.request_id.empty());
  context.EnsureIds();
  const TraceContext first = context;
  context.EnsureIds();  // idempotent: the ids logged are the ids returned
  EXPECT_EQ(context.trace_id, first.trace_id);
  EXPECT_EQ(context.span_id, first.span_id);
  EXPECT_EQ(context.request_id, first.trace_id);
  // The caller's ids are kept; only the span is the server's own.
  TraceContext traced = TraceContext::FromHeaders(kValid, "", "req-1");
  traced.EnsureIds();
  EXPECT_EQ(traced.trace_id, kTraceId);
  EXPECT_EQ(traced.request_id, "req-1");
}

TEST(TraceContextTest, IdsGoBackWhenAskedForOrTheCallFailed) {
  const TraceContext none = TraceContext::FromHeaders("", "", "");
  EXPECT_FALSE(none.ReturnsIds(/*failed=*/false));
  EXPECT_TRUE(none.ReturnsIds(/*failed=*/true));
  // Any of the three headers asks, even one the server could not use.
  for (const TraceContext& asked :
       {TraceContext::FromHeaders(kValid, "", ""),
        TraceContext::FromHeaders("not a traceparent", "", ""),
        TraceContext::FromHeaders("", "vendor=value", ""),
        TraceContext::FromHeaders("", "", "req-1")}) {
    EXPECT_TRUE(asked.headers_sent);
    EXPECT_TRUE(asked.ReturnsIds(/*failed=*/false));
  }
}

TEST(TraceContextTest, OnlyTheSampledFlagIsKept) {
  EXPECT_EQ(
      TraceContext::FromHeaders(
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff", "", "")
          .flags,
      "01");
  EXPECT_EQ(
      TraceContext::FromHeaders(
          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe", "", "")
          .flags,
      "00");
}

TEST(TraceContextTest, ReplacesUnusableRequestIds) {
  EXPECT_EQ(TraceContext::FromHeaders("", "", "a \"quoted\\\" id").request_id,
            "a \"quoted\\\" id");
  for (const std::string& bad :
       {std::string(kMaxRequestIdBytes + 1, 'x'), std::string("tab\there"),
        std::string("bytes\xff")}) {
    const TraceContext context = WithIds("", "", bad);
    EXPECT_TRUE(IsLowerHex(context.trace_id, 32)) << bad;
    EXPECT_EQ(context.request_id, context.trace_id) << bad;
    // Sent back, so that the caller learns the id its call was logged under.
    EXPECT_TRUE(context.request_id_sent) << bad;
  }
}

TEST(TraceContextTest, DropsAnOversizedTracestate) {
  EXPECT_TRUE(TraceContext::FromHeaders(
                  kValid, std::string(kMaxTracestateBytes + 1, 'x'), "")
                  .tracestate.empty());
}

TEST(RandomHexIdTest, LowerHexOfTheLengthAskedAndNeverRepeated) {
  std::set<std::string> seen;
  for (size_t bytes : {1, 3, 8, 12, 16}) {
    for (int i = 0; i < 200; ++i) {
      const std::string id = RandomHexId(bytes);
      ASSERT_EQ(id.size(), 2 * bytes);
      EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos)
          << id;
      EXPECT_NE(id.find_first_not_of('0'), std::string::npos) << id;
      if (bytes >= 8) {
        EXPECT_TRUE(seen.insert(id).second) << id;
      }
    }
  }
  // Every hex digit turns up in every position of 16-byte ids.
  std::vector<std::set<char>> digits(32);
  for (int i = 0; i < 2000; ++i) {
    const std::string id = RandomHexId(16);
    for (size_t j = 0; j < id.size(); ++j) digits[j].insert(id[j]);
  }
  for (size_t j = 0; j < digits.size(); ++j) {
    EXPECT_EQ(digits[j].size(), 16u) << "position " << j;
  }
}

}  // namespace
}  // namespace relu::service
