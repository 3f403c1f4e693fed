#include "tests/metrics/json_value.h"

#include <cstdlib>

namespace relu::metrics::testing {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    JsonValue value;
    if (!ParseValue(&value, 0)) return Error();
    SkipSpace();
    if (pos_ != text_.size()) {
      error_ = "trailing characters";
      return Error();
    }
    return value;
  }

 private:
  static constexpr int kMaxDepth = 200;

  absl::Status Error() const {
    return absl::InvalidArgumentError("JSON: " + error_ + " at offset " +
                                      std::to_string(pos_));
  }

  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' ||
            text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(char c) {
    SkipSpace();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  bool Literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) {
      error_ = "bad literal";
      return false;
    }
    pos_ += word.size();
    return true;
  }

  bool ParseValue(JsonValue* value, int depth) {
    if (depth > kMaxDepth) {
      error_ = "too deep";
      return false;
    }
    SkipSpace();
    if (pos_ >= text_.size()) {
      error_ = "unexpected end";
      return false;
    }
    const char c = text_[pos_];
    if (c == '{') return ParseObject(value, depth);
    if (c == '[') return ParseArray(value, depth);
    if (c == '"') {
      value->type = JsonValue::Type::kString;
      return ParseString(&value->string);
    }
    if (c == 't' || c == 'f') {
      value->type = JsonValue::Type::kBool;
      value->boolean = c == 't';
      return Literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') {
      value->type = JsonValue::Type::kNull;
      return Literal("null");
    }
    return ParseNumber(value);
  }

  bool ParseNumber(JsonValue* value) {
    const size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    const size_t digits = pos_;
    while (pos_ < text_.size() &&
           std::string_view("0123456789.eE+-").find(text_[pos_]) !=
               std::string_view::npos) {
      ++pos_;
    }
    if (pos_ == digits) {
      error_ = "unexpected character";
      return false;
    }
    const std::string number(text_.substr(start, pos_ - start));
    char* end = nullptr;
    value->type = JsonValue::Type::kNumber;
    value->number = std::strtod(number.c_str(), &end);
    if (end != number.c_str() + number.size()) {
      error_ = "bad number";
      return false;
    }
    return true;
  }

  static void AppendUtf8(uint32_t code, std::string* out) {
    if (code < 0x80) {
      *out += static_cast<char>(code);
    } else if (code < 0x800) {
      *out += static_cast<char>(0xC0 | (code >> 6));
      *out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      *out += static_cast<char>(0xE0 | (code >> 12));
      *out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (code >> 18));
      *out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  bool Hex4(uint32_t* code) {
    if (pos_ + 4 > text_.size()) return false;
    *code = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      *code <<= 4;
      if (c >= '0' && c <= '9') {
        *code |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        *code |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        *code |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }

  bool ParseString(std::string* out) {
    ++pos_;  // opening quote
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) {
        error_ = "control character in string";
        return false;
      }
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (pos_ >= text_.size()) break;
      const char escape = text_[pos_++];
      switch (escape) {
        case '"':
        case '\\':
        case '/':
          *out += escape;
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'n':
          *out += '\n';
          break;
        case 'r':
          *out += '\r';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          uint32_t code = 0;
          if (!Hex4(&code)) {
            error_ = "bad \\u escape";
            return false;
          }
          if (code >= 0xD800 && code < 0xDC00 &&
              text_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            uint32_t low = 0;
            if (!Hex4(&low) || low < 0xDC00 || low >= 0xE000) {
              error_ = "bad surrogate pair";
              return false;
            }
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(code, out);
          break;
        }
        default:
          error_ = "bad escape";
          return false;
      }
    }
    error_ = "unterminated string";
    return false;
  }

  bool ParseArray(JsonValue* value, int depth) {
    ++pos_;
    value->type = JsonValue::Type::kArray;
    if (Consume(']')) return true;
    do {
      value->items.emplace_back();
      if (!ParseValue(&value->items.back(), depth + 1)) return false;
    } while (Consume(','));
    if (!Consume(']')) {
      error_ = "expected ] or ,";
      return false;
    }
    return true;
  }

  bool ParseObject(JsonValue* value, int depth) {
    ++pos_;
    value->type = JsonValue::Type::kObject;
    if (Consume('}')) return true;
    do {
      SkipSpace();
      if (pos_ >= text_.size() || text_[pos_] != '"') {
        error_ = "expected a key";
        return false;
      }
      value->keys.emplace_back();
      if (!ParseString(&value->keys.back())) return false;
      if (!Consume(':')) {
        error_ = "expected :";
        return false;
      }
      value->items.emplace_back();
      if (!ParseValue(&value->items.back(), depth + 1)) return false;
    } while (Consume(','));
    if (!Consume('}')) {
      error_ = "expected } or ,";
      return false;
    }
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
  std::string error_ = "syntax error";
};

}  // namespace

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (type != Type::kObject) return nullptr;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return &items[i];
  }
  return nullptr;
}

std::string JsonValue::StringAt(std::string_view key) const {
  const JsonValue* member = Find(key);
  if (member == nullptr || member->type != Type::kString) return "";
  return member->string;
}

absl::StatusOr<JsonValue> ParseJson(std::string_view text) {
  return Parser(text).ParseDocument();
}

void CollectStrings(const JsonValue& root, std::string_view key,
                    std::vector<std::string>* out) {
  for (size_t i = 0; i < root.items.size(); ++i) {
    if (root.type == JsonValue::Type::kObject && root.keys[i] == key &&
        root.items[i].type == JsonValue::Type::kString) {
      out->push_back(root.items[i].string);
    }
    CollectStrings(root.items[i], key, out);
  }
}

}  // namespace relu::metrics::testing
