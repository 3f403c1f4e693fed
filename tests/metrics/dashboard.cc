#include "tests/metrics/dashboard.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "tests/metrics/json_value.h"

namespace relu::metrics::testing {
namespace {

void ReplaceAll(std::string* text, const std::string& from,
                const std::string& to) {
  for (size_t at = text->find(from); at != std::string::npos;
       at = text->find(from, at + to.size())) {
    text->replace(at, from.size(), to);
  }
}

}  // namespace

absl::StatusOr<std::vector<std::string>> DashboardQueries(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::ostringstream contents;
  contents << in.rdbuf();
  auto json = ParseJson(contents.str());
  if (!json.ok()) return json.status();
  std::vector<std::string> queries;
  CollectStrings(*json, "expr", &queries);
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
