// Linear: y = x W^T + b for x [*, in] (any leading dims, e.g. [N, T, in]),
// W [out, in], b [out].
// Initialised as PyTorch: W and b uniform in +-1/sqrt(in).
#pragma once

#include <cstdint>

#include "layers/modules/module.h"

namespace aimc {

class Generator;

class Linear : public Module {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Generator& gen);
  Linear(std::int64_t in_features, std::int64_t out_features, Generator& gen)
      : Linear(in_features, out_features, true, gen) {}

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  nlohmann::json config() const override;

  std::int64_t in_features() const { return in_features_; }
  std::int64_t out_features() const { return out_features_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias

 private:
  std::int64_t in_features_, out_features_;
  Tensor weight_, bias_;
};

}  // namespace aimc
