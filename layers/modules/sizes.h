// Sizes: a kernel/stride/padding argument given as one value for every
// spatial dim (Conv2d(1, 6, 5, ...)) or one value per dim ({3, 5}).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/error.h"

namespace aimc {

struct Sizes {
  std::vector<std::int64_t> values;

  Sizes() = default;
  Sizes(std::int64_t v) : values{v} {}  // NOLINT: implicit on purpose
  Sizes(std::initializer_list<std::int64_t> v) : values(v) {}
  Sizes(std::vector<std::int64_t> v) : values(std::move(v)) {}  // NOLINT
  bool empty() const { return values.empty(); }

  // One value per dim; ConfigError unless there are 1 or `dims` values, each >= min_value.
  std::vector<std::int64_t> expand(std::size_t dims, std::int64_t min_value, const std::string& what) const {
    if (values.size() != 1 && values.size() != dims)
      throw ConfigError(what + ": expected 1 or " + std::to_string(dims) + " values, got " +
                        std::to_string(values.size()));
    for (auto v : values)
      if (v < min_value)
        throw ConfigError(what + ": value " + std::to_string(v) + " must be >= " + std::to_string(min_value));
    return values.size() == dims ? values : std::vector<std::int64_t>(dims, values[0]);
  }
};

}  // namespace aimc
