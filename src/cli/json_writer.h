// JsonWriter: writes one JSON document (RFC 8259) into a string, indented two
// spaces per level, for the --json output of `ecfs fsck` and `ecfs inspect`.
//
// The caller nests begin/end calls correctly; inside an object every value
// is preceded by key(). Strings are escaped per RFC 8259 section 7; bytes
// that are not valid UTF-8 (a label is any bytes) are written as \u00XX, so
// the document is always valid JSON. Numbers are 64-bit integers written
// exactly (readers that parse into doubles lose precision above
// 2^53, which python3's json does not). Not thread-safe.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ecfs::cli {

class JsonWriter {
 public:
  void begin_object();
  void end_object();
  void begin_array();
  void end_array();
  void key(std::string_view name);

  void value(std::string_view text);
  void value(const char* text) { value(std::string_view(text)); }
  void value(bool flag);
  // Any unsigned integer type (int8_t fields etc. are widened first).
  template <std::unsigned_integral T>
  requires(!std::same_as<T, bool>) void value(T number) {
    write_number(static_cast<uint64_t>(number));
  }
  // Any signed integer type, written exactly with its sign.
  template <std::signed_integral T>
  void value(T number) {
    write_signed(static_cast<int64_t>(number));
  }
  void null_value();

  // key(name) followed by value(v).
  template <typename T>
  void field(std::string_view name, const T& v) {
    key(name);
    value(v);
  }

  // The document so far, with a final newline once the outermost value ends.
  const std::string& text() const { return out_; }

 private:
  void before_value();
  void open(char bracket);
  void close(char bracket);
  void write_number(uint64_t number);
  void write_signed(int64_t number);

  std::string out_;
  // One entry per open container: how many values it holds so far.
  std::vector<size_t> counts_;
  bool after_key_ = false;
};

// RFC 8259 string escaping, quotes included.
std::string json_quote(std::string_view text);

}  // namespace ecfs::cli
