// JSON from untrusted text (config files, checkpoint metadata, file
// headers). nlohmann's parser is iterative, but copying a parsed value
// recurses once per nesting level, so a document nested a few thousand
// levels deep would overflow the stack later; parse_json_bounded refuses
// anything nested deeper than kMaxJsonDepth while parsing.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace aimc {

// The deepest nesting of objects and arrays accepted (aimc's own configs
// nest fewer than 10 levels).
constexpr int kMaxJsonDepth = 64;

// The JSON value of `text`, or nullopt with `error` saying what is wrong
// (malformed, with the parser's position, or nested too deep).
template <class Json>
std::optional<Json> parse_json_bounded(std::string_view text, std::string& error) {
  bool too_deep = false;
  // Values below the limit are not kept, so nothing deep is ever built.
  auto bound = [&too_deep](int depth, typename Json::parse_event_t, Json&) {
    if (depth > kMaxJsonDepth) too_deep = true;
    return !too_deep;
  };
  Json value;
  try {
    value = Json::parse(text, bound);
  } catch (const typename Json::exception& e) {
    error = std::string("malformed JSON: ") + e.what();
    return std::nullopt;
  }
  if (too_deep) {
    error = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    return std::nullopt;
  }
  return value;
}

}  // namespace aimc
