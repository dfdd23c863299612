// Flatten: merges dims start_dim..end_dim into one (default [N, *] -> [N, prod]).
#pragma once

#include <cstdint>

#include "layers/modules/module.h"

namespace aimc {

class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1) : start_dim_(start_dim), end_dim_(end_dim) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Flatten"; }
  nlohmann::json config() const override;

 private:
  std::int64_t start_dim_, end_dim_;
};

}  // namespace aimc
