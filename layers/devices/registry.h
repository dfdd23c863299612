// A registry of plug-in factories by type name, shared by the noise models,
// conductance converters and drift compensations. Thread-safe; built-ins are
// given at construction, plug-ins added with add().
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/error.h"

namespace aimc::devices {

// The "type" string of a plug-in object; ConfigError naming `where` otherwise.
inline std::string object_type(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw ConfigError(where + " = " + j.dump() + " is invalid: allowed an object {\"type\": \"<name>\", ...}");
  return j["type"].get<std::string>();
}

template <class Factory>
class Registry {
 public:
  Registry(const char* what, std::vector<std::pair<std::string, Factory>> builtins)
      : what_(what), entries_(std::move(builtins)) {}

  void add(const std::string& type, Factory factory) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : entries_)
      if (e.first == type) throw ConfigError(std::string(what_) + " type '" + type + "' is already registered");
    entries_.emplace_back(type, std::move(factory));
  }

  // The factory of j["type"]; ConfigError listing the known types.
  Factory get(const nlohmann::json& j, const std::string& where) const {
    const std::string type = object_type(j, where);
    std::lock_guard<std::mutex> lock(mutex_);
    std::string known;
    for (const auto& e : entries_) {
      if (e.first == type) return e.second;
      known += (known.empty() ? "" : ", ") + e.first;
    }
    throw ConfigError(where + ".type = '" + type + "' is not a known " + what_ + ": known are " + known);
  }

  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& e : entries_) out.push_back(e.first);
    return out;
  }

 private:
  const char* what_;
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, Factory>> entries_;
};

}  // namespace aimc::devices
