// Strict JSON field reading and range checks for the config structs.
#include "layers/config/json_fields.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>

#include "engine/error.h"

namespace aimc::config {

namespace {

std::string json_kind(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return std::string("boolean ") + v.dump();
  if (v.is_number()) return "number " + v.dump();
  if (v.is_string()) return "string " + v.dump();
  if (v.is_array()) return "an array";
  return "an object";
}

}  // namespace

nlohmann::json float_to_json(float value) {
  if (!std::isfinite(value)) return nlohmann::json(static_cast<double>(value));
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value);
  *res.ptr = '\0';
  return nlohmann::json(std::strtod(buf, nullptr));
}

std::string format_number(double value) {
  char buf[64];
  // Values that came from a float print in the float's shortest form.
  const float as_float = static_cast<float>(value);
  auto res = (std::isfinite(value) && static_cast<double>(as_float) == value)
                 ? std::to_chars(buf, buf + sizeof(buf), as_float)
                 : std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, res.ptr);
}

ObjectReader::ObjectReader(const nlohmann::json& object, std::string where)
    : object_(object), where_(std::move(where)) {
  if (!object_.is_object()) {
    throw ConfigError(where_ + ": expected a JSON object, got " + json_kind(object_));
  }
}

const nlohmann::json* ObjectReader::find(const char* key) {
  known_.emplace_back(key);
  auto it = object_.find(key);
  if (it == object_.end()) return nullptr;
  return &*it;
}

void ObjectReader::type_error(const char* key, const std::string& expected,
                              const nlohmann::json& got) const {
  throw ConfigError(path(key) + ": expected " + expected + ", got " + json_kind(got));
}

void ObjectReader::unknown_enum(const char* key, const std::string& got,
                                const std::string& allowed) const {
  throw ConfigError(path(key) + ": unknown value \"" + got + "\"; allowed: " + allowed);
}

void ObjectReader::read(const char* key, float& out) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return;
  if (!v->is_number()) type_error(key, "a number", *v);
  out = static_cast<float>(v->get<double>());
}

void ObjectReader::read(const char* key, bool& out) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return;
  if (!v->is_boolean()) type_error(key, "a boolean (true/false)", *v);
  out = v->get<bool>();
}

void ObjectReader::read(const char* key, int& out) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return;
  if (!v->is_number()) type_error(key, "an integer", *v);
  const double d = v->get<double>();
  if (!(d == std::floor(d)) || d < std::numeric_limits<int>::min() ||
      d > std::numeric_limits<int>::max()) {
    type_error(key, "an integer", *v);
  }
  out = static_cast<int>(d);
}

std::optional<std::int64_t> json_int64(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (!v.is_number_float()) return std::nullopt;
  const double d = v.get<double>();
  // 2^63 itself is out of range; every double below it with d == floor(d) converts exactly.
  if (!(d == std::floor(d)) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) return std::nullopt;
  return static_cast<std::int64_t>(d);
}

void ObjectReader::read(const char* key, std::int64_t& out) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return;
  const auto i = json_int64(*v);
  if (!i) type_error(key, "an integer", *v);
  out = *i;
}

void ObjectReader::read(const char* key, double& out) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return;
  if (!v->is_number()) type_error(key, "a number", *v);
  out = v->get<double>();
}

void ObjectReader::read(const char* key, std::vector<std::int64_t>& out) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return;
  if (!v->is_array()) type_error(key, "an array of integers", *v);
  std::vector<std::int64_t> values;
  for (const auto& e : *v) {
    const auto i = json_int64(e);
    if (!i) type_error(key, "an array of integers", *v);
    values.push_back(*i);
  }
  out = std::move(values);
}

void ObjectReader::require(const char* key) const {
  if (!object_.contains(key)) throw ConfigError(path(key) + ": missing (a required field)");
}

void ObjectReader::read(const char* key, std::string& out) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return;
  if (v->is_null()) {
    out.clear();
    return;
  }
  if (!v->is_string()) type_error(key, "a string or null", *v);
  out = v->get<std::string>();
}

void ObjectReader::read(const char* key, std::vector<float>& out) {
  const nlohmann::json* v = find(key);
  if (v == nullptr) return;
  if (!v->is_array() || v->empty()) type_error(key, "a non-empty array of numbers", *v);
  std::vector<float> values;
  for (const auto& e : *v) {
    if (!e.is_number()) type_error(key, "a non-empty array of numbers", *v);
    values.push_back(static_cast<float>(e.get<double>()));
  }
  out = std::move(values);
}

void ObjectReader::read_resolution(const char* key, float& out) {
  read(key, out);
  if (object_.contains(key) && out > 1.0f) out = 1.0f / out;
}

void ObjectReader::finish() const {
  for (auto it = object_.begin(); it != object_.end(); ++it) {
    if (std::find(known_.begin(), known_.end(), it.key()) != known_.end()) continue;
    std::string list;
    for (const auto& k : known_) {
      if (!list.empty()) list += ", ";
      list += k;
    }
    throw ConfigError(where_ + ": unknown field \"" + it.key() + "\"; known fields: " + list);
  }
}

void RangeCheck::fail(const char* field, const std::string& value,
                      const std::string& allowed) const {
  throw ConfigError(where_ + "." + field + " = " + value + " is invalid: allowed " + allowed);
}

void RangeCheck::finite(const char* field, double value) const {
  if (!std::isfinite(value)) fail(field, format_number(value), "a finite number");
}

void RangeCheck::at_least(const char* field, double value, double lo) const {
  if (!(value >= lo) || !std::isfinite(value)) {
    fail(field, format_number(value), ">= " + format_number(lo));
  }
}

void RangeCheck::greater(const char* field, double value, double lo) const {
  if (!(value > lo) || !std::isfinite(value)) {
    fail(field, format_number(value), "> " + format_number(lo));
  }
}

void RangeCheck::in_closed(const char* field, double value, double lo, double hi) const {
  if (!(value >= lo && value <= hi)) {
    fail(field, format_number(value), "[" + format_number(lo) + ", " + format_number(hi) + "]");
  }
}

void RangeCheck::in_half_open(const char* field, double value, double lo, double hi) const {
  if (!(value >= lo && value < hi)) {
    fail(field, format_number(value), "[" + format_number(lo) + ", " + format_number(hi) + ")");
  }
}

void RangeCheck::resolution(const char* field, double value) const {
  if (!std::isfinite(value) || value > 1.0) {
    fail(field, format_number(value),
         "<= 0 (off) or a resolution in (0, 1] (JSON also takes a number of steps > 1)");
  }
}

}  // namespace aimc::config
