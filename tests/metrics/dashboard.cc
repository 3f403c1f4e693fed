#include "tests/metrics/dashboard.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "nlohmann/json.hpp"

namespace relu::metrics::testing {
namespace {

void ReplaceAll(std::string* text, const std::string& from,
                const std::string& to) {
  for (size_t at = text->find(from); at != std::string::npos;
       at = text->find(from, at + to.size())) {
    text->replace(at, from.size(), to);
  }
}

// Appends every string value of a member named `key`, anywhere in `root`, in
// document order.
void CollectStrings(const nlohmann::ordered_json& root, const std::string& key,
                    std::vector<std::string>* out) {
  // (Iterating a primitive would visit the value itself, endlessly.)
  if (!root.is_structured()) return;
  for (const auto& [name, value] : root.items()) {
    if (root.is_object() && name == key && value.is_string()) {
      out->push_back(value.get<std::string>());
    }
    CollectStrings(value, key, out);
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> DashboardQueries(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::ostringstream contents;
  contents << in.rdbuf();
  const auto json = nlohmann::ordered_json::parse(contents.str(), nullptr,
                                                  /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(path + " is not JSON");
  }
  std::vector<std::string> queries;
  CollectStrings(json, "expr", &queries);
  if (queries.empty()) return absl::InvalidArgumentError("no expr in " + path);
  // Longest names first: $__rate_interval before $__interval.
  const std::pair<const char*, const char*> kVariables[] = {
      {"$__rate_interval", "1m"},
      {"$__interval", "1m"},
      {"$__range", "5m"},
      {"$instance", ".+"}};
  for (std::string& query : queries) {
    for (const auto& [name, value] : kVariables)
      ReplaceAll(&query, name, value);
    if (query.find('$') != std::string::npos) {
      return absl::InvalidArgumentError("unknown variable in " + query);
    }
  }
  return queries;
}

}  // namespace relu::metrics::testing
