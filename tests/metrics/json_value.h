// A small JSON reader for tests (Prometheus API answers, the Grafana
// dashboard): the whole RFC 8259 grammar, values kept in a plain tree.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace relu::metrics::testing {

struct JsonValue {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Type type = Type::kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> items;   // array elements, or object values
  std::vector<std::string> keys;  // object keys, parallel to `items`

  // The member named `key` of an object, else null.
  const JsonValue* Find(std::string_view key) const;
  // Find(key)->string, or "" when absent or not a string.
  std::string StringAt(std::string_view key) const;
};

// Parses a complete JSON text; INVALID_ARGUMENT with the offset on error.
absl::StatusOr<JsonValue> ParseJson(std::string_view text);

// Every string value under a member named `key`, anywhere in `root`, in
// document order.
void CollectStrings(const JsonValue& root, std::string_view key,
                    std::vector<std::string>* out);

}  // namespace relu::metrics::testing
