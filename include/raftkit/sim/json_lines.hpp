#pragma once
/// \file A small, strict reader and writer for flat JSON objects, one per line.
///
/// History files hold one object per line whose values are only strings and integers,
/// so a full JSON library would be dead weight, and the core simulator headers must not
/// depend on Boost or fmt. The reader accepts exactly that subset of RFC 8259 and says
/// precisely what is wrong otherwise; the writer escapes so that any byte string
/// round-trips through it.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace raftkit::sim {

/// The value of one field of a flat JSON object: a string or an integer.
using json_value = std::variant<std::string, std::int64_t>;

/// One field of a flat JSON object, in the order it appeared on the line.
struct json_field {
  std::string name;   ///< The field name (unescaped).
  json_value value;   ///< The field value.
};

/// A flat JSON object (fields in order of appearance), or why the line is not one.
struct json_object_result {
  std::vector<json_field> fields;  ///< The fields, valid when `error` is empty.
  std::string error;               ///< Empty on success, else what is wrong and where.

  /// True when the line parsed.
  explicit operator bool() const noexcept { return error.empty(); }
};

namespace detail {

/// Cursor over one line; every failure records the first problem and its column.
class flat_json_reader {
 public:
  explicit flat_json_reader(std::string_view text) noexcept : text_(text) {}

  json_object_result read_object() {
    json_object_result out;
    skip_ws();
    if (!expect('{', "expected '{' at start of object")) return fail(out);
    skip_ws();
    if (peek() == '}') {
      ++pos_;
    } else {
      for (;;) {
        skip_ws();
        std::string name;
        if (peek() != '"') {
          error_ = "expected a field name string";
          return fail(out);
        }
        if (!read_string(name)) return fail(out);
        for (const auto& f : out.fields) {
          if (f.name == name) {
            error_ = "duplicate field \"" + name + "\"";
            return fail(out);
          }
        }
        skip_ws();
        if (!expect(':', "expected ':' after field name")) return fail(out);
        skip_ws();
        json_field field{std::move(name), std::int64_t{0}};
        if (peek() == '"') {
          std::string s;
          if (!read_string(s)) return fail(out);
          field.value = std::move(s);
        } else if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
          std::int64_t v = 0;
          if (!read_integer(v)) return fail(out);
          field.value = v;
        } else {
          error_ = "field \"" + field.name +
                   "\": value must be a string or an integer (objects, arrays, "
                   "booleans, null and fractions are not allowed here)";
          return fail(out);
        }
        out.fields.push_back(std::move(field));
        skip_ws();
        if (peek() == ',') {
          ++pos_;
          continue;
        }
        if (!expect('}', "expected ',' or '}' after a field")) return fail(out);
        break;
      }
    }
    skip_ws();
    if (pos_ != text_.size()) {
      error_ = "unexpected text after the closing '}'";
      return fail(out);
    }
    return out;
  }

 private:
  static constexpr int eof = -1;

  int peek() const noexcept {
    return pos_ < text_.size() ? static_cast<unsigned char>(text_[pos_]) : eof;
  }

  void skip_ws() noexcept {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\r' ||
            text_[pos_] == '\n'))
      ++pos_;
  }

  bool expect(char c, const char* msg) {
    if (peek() != static_cast<unsigned char>(c)) {
      error_ = msg;
      return false;
    }
    ++pos_;
    return true;
  }

  json_object_result& fail(json_object_result& out) {
    out.fields.clear();
    out.error = error_ + " (column " + std::to_string(pos_ + 1) + ")";
    return out;
  }

  bool read_hex4(std::uint32_t& cp) {
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      int c = peek();
      std::uint32_t d = 0;
      if (c >= '0' && c <= '9') d = static_cast<std::uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') d = static_cast<std::uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') d = static_cast<std::uint32_t>(c - 'A' + 10);
      else {
        error_ = "\\u escape needs four hex digits";
        return false;
      }
      cp = cp * 16 + d;
      ++pos_;
    }
    return true;
  }

  static void append_utf8(std::string& s, std::uint32_t cp) {
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // Bytes >= 0x80 are taken verbatim: the writer emits them raw so that arbitrary
  // (even non-UTF-8) byte strings round-trip; raw control characters are refused.
  bool read_string(std::string& out) {
    ++pos_;  // opening quote
    for (;;) {
      int c = peek();
      if (c == eof) {
        error_ = "unterminated string";
        return false;
      }
      ++pos_;
      if (c == '"') return true;
      if (c < 0x20) {
        --pos_;
        error_ = "raw control character in string (must be escaped)";
        return false;
      }
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        continue;
      }
      int e = peek();
      if (e == eof) {
        error_ = "unterminated string";
        return false;
      }
      ++pos_;
      switch (e) {
        case '"': out.push_back('"'); break;
        case '\\': out.push_back('\\'); break;
        case '/': out.push_back('/'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!read_hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) {
            error_ = "unpaired low surrogate in \\u escape";
            return false;
          }
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (peek() != '\\' || pos_ + 1 >= text_.size() || text_[pos_ + 1] != 'u') {
              error_ = "high surrogate \\u escape not followed by a low surrogate";
              return false;
            }
            pos_ += 2;
            std::uint32_t lo = 0;
            if (!read_hex4(lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) {
              error_ = "high surrogate \\u escape not followed by a low surrogate";
              return false;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          error_ = "invalid escape sequence in string";
          return false;
      }
    }
  }

  bool read_integer(std::int64_t& out) {
    bool negative = false;
    if (peek() == '-') {
      negative = true;
      ++pos_;
    }
    if (peek() < '0' || peek() > '9') {
      error_ = "expected a digit";
      return false;
    }
    if (peek() == '0' && pos_ + 1 < text_.size() && text_[pos_ + 1] >= '0' &&
        text_[pos_ + 1] <= '9') {
      error_ = "leading zeros are not allowed in numbers";
      return false;
    }
    // Accumulate as a negative number so that INT64_MIN is representable.
    std::int64_t v = 0;
    constexpr std::int64_t min = std::numeric_limits<std::int64_t>::min();
    while (peek() >= '0' && peek() <= '9') {
      int d = peek() - '0';
      if (v < (min + d) / 10) {
        error_ = "integer out of 64-bit range";
        return false;
      }
      v = v * 10 - d;
      ++pos_;
    }
    if (peek() == '.' || peek() == 'e' || peek() == 'E') {
      error_ = "only integers are allowed, not fractions or exponents";
      return false;
    }
    if (!negative) {
      if (v == min) {
        error_ = "integer out of 64-bit range";
        return false;
      }
      v = -v;
    }
    out = v;
    return true;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::string error_;
};

}  // namespace detail

/// Parses one line holding a flat JSON object whose values are strings or integers.
/// Duplicate field names, nested values, fractions and trailing text are errors.
inline json_object_result parse_flat_json_object(std::string_view line) {
  return detail::flat_json_reader(line).read_object();
}

/// Writes `s` as a JSON string literal (with quotes). `"`, `\` and control characters
/// are escaped; other bytes are written verbatim so any byte string round-trips through
/// parse_flat_json_object.
inline void write_json_string(std::ostream& os, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  os.put('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': os << "\\\""; break;
      case '\\': os << "\\\\"; break;
      case '\n': os << "\\n"; break;
      case '\t': os << "\\t"; break;
      case '\r': os << "\\r"; break;
      case '\b': os << "\\b"; break;
      case '\f': os << "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          os << "\\u00" << hex[c >> 4] << hex[c & 0xF];
        } else {
          os.put(ch);
        }
    }
  }
  os.put('"');
}

}  // namespace raftkit::sim
