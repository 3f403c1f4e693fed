#include "tests/metrics/json_value.h"

#include <gtest/gtest.h>

namespace relu::metrics::testing {
namespace {

TEST(JsonValueTest, ParsesNestedValues) {
  auto json = ParseJson(
      R"( {"a": [1, -2.5e3, true, false, null], "b": {"expr": "x\"y\\z\u00e9"},
          "c": [{"expr": "q"}]} )");
  ASSERT_TRUE(json.ok()) << json.status();
  const JsonValue* a = json->Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items.size(), 5u);
  EXPECT_EQ(a->items[1].number, -2500);
  EXPECT_TRUE(a->items[2].boolean);
  EXPECT_EQ(a->items[4].type, JsonValue::Type::kNull);
  EXPECT_EQ(json->Find("b")->StringAt("expr"), "x\"y\\z\xc3\xa9");
  std::vector<std::string> exprs;
  CollectStrings(*json, "expr", &exprs);
  EXPECT_EQ(exprs, (std::vector<std::string>{"x\"y\\z\xc3\xa9", "q"}));
}

TEST(JsonValueTest, RejectsMalformedText) {
  for (const char* text :
       {"", "{", "[1,]", "{\"a\" 1}", "\"open", "tru", "{} x", "[1 2]"}) {
    EXPECT_FALSE(ParseJson(text).ok()) << text;
  }
}

}  // namespace
}  // namespace relu::metrics::testing
