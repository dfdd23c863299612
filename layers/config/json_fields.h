// Helpers shared by the config structs of layers/config: strict reading of a
// JSON object field by field (wrong types and unknown fields throw
// aimc::ConfigError naming the field and listing the known ones), enum <->
// name tables in aihwkit's spelling, compact float output, and range checks
// whose messages name the field, the value and the allowed range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aimc::config {

// One enum value with its aihwkit member name ("ABS_MAX", written to JSON) and
// its aihwkit enum value ("AbsMax", also accepted when reading).
template <class E>
struct EnumName {
  E value;
  const char* name;
  const char* alias;
};

// Comma-separated list of the names of an enum table (for error messages).
template <class E>
std::string enum_names(std::span<const EnumName<E>> table) {
  std::string out;
  for (const auto& e : table) {
    if (!out.empty()) out += ", ";
    out += e.name;
  }
  return out;
}

// The aihwkit member name of an enum value ("?" if the table lacks it).
template <class E>
const char* enum_to_name(E value, std::span<const EnumName<E>> table) {
  for (const auto& e : table) {
    if (e.value == value) return e.name;
  }
  return "?";
}

// A float as a JSON number with the shortest decimal that reads back as the
// same float (0.06f is written 0.06, not 0.05999999865889549).
nlohmann::json float_to_json(float value);

// An integer JSON value (an integral float too) as int64; nullopt for
// anything else or a value outside int64.
std::optional<std::int64_t> json_int64(const nlohmann::json& v);

// Reads the fields of one JSON object. `where` is the dotted path used in
// messages ("InferenceRPUConfig.forward"). Each read_* marks its key as known;
// absent keys leave the target untouched (it keeps its default). finish()
// rejects any key that was not read.
class ObjectReader {
 public:
  ObjectReader(const nlohmann::json& object, std::string where);

  void read(const char* key, float& out);
  void read(const char* key, bool& out);
  void read(const char* key, int& out);
  void read(const char* key, std::int64_t& out);
  void read(const char* key, double& out);
  // A string; JSON null reads as "".
  void read(const char* key, std::string& out);
  // A non-empty array of numbers.
  void read(const char* key, std::vector<float>& out);
  // An array of integers (empty allowed).
  void read(const char* key, std::vector<std::int64_t>& out);
  // ConfigError "<where>.<key>: missing" when the object lacks the key.
  void require(const char* key) const;
  // A resolution: values > 1 are a number of steps and are stored as 1/steps.
  void read_resolution(const char* key, float& out);

  template <class E>
  void read_enum(const char* key, E& out, std::span<const EnumName<E>> table) {
    const nlohmann::json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_string()) type_error(key, "a string (one of " + enum_names(table) + ")", *v);
    const std::string s = v->get<std::string>();
    for (const auto& e : table) {
      if (s == e.name || s == e.alias) {
        out = e.value;
        return;
      }
    }
    unknown_enum(key, s, enum_names(table));
  }

  // The raw value of a key (marked known), or nullptr when absent.
  const nlohmann::json* find(const char* key);
  // The dotted path of a key for messages and nested readers.
  std::string path(const char* key) const { return where_ + "." + key; }
  // Throws ConfigError if the object holds a key that no read_* asked for.
  void finish() const;

 private:
  [[noreturn]] void type_error(const char* key, const std::string& expected,
                               const nlohmann::json& got) const;
  [[noreturn]] void unknown_enum(const char* key, const std::string& got,
                                 const std::string& allowed) const;

  const nlohmann::json& object_;
  std::string where_;
  std::vector<std::string> known_;
};

// Range checks for validate(): each throws ConfigError "<where>.<field> = <value>
// is invalid: allowed <range>" when its condition fails.
class RangeCheck {
 public:
  explicit RangeCheck(std::string where) : where_(std::move(where)) {}

  void finite(const char* field, double value) const;
  void at_least(const char* field, double value, double lo) const;        // value >= lo
  void greater(const char* field, double value, double lo) const;         // value > lo
  void in_closed(const char* field, double value, double lo, double hi) const;  // [lo, hi]
  void in_half_open(const char* field, double value, double lo, double hi) const;  // [lo, hi)
  // A resolution: <= 0 means off, otherwise in (0, 1].
  void resolution(const char* field, double value) const;
  // Fails with a custom description of the allowed values.
  [[noreturn]] void fail(const char* field, const std::string& value,
                         const std::string& allowed) const;

  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

// A number formatted for messages (shortest round-trip form).
std::string format_number(double value);

}  // namespace aimc::config
