// Linear layer (see linear.h).
#include "layers/modules/linear.h"

#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "layers/modules/init.h"

namespace aimc {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool bias, Generator& gen)
    : in_features_(in_features), out_features_(out_features) {
  if (in_features < 1 || out_features < 1)
    throw ConfigError("Linear: in_features and out_features must be >= 1, got " + std::to_string(in_features) +
                      " and " + std::to_string(out_features));
  Tensor w = Tensor::empty({out_features, in_features});
  Tensor b = bias ? Tensor::empty({out_features}) : Tensor();
  default_layer_init_(w, b, gen);
  weight_ = register_parameter("weight", w);
  if (bias) bias_ = register_parameter("bias", b);
}

Tensor Linear::forward(const Tensor& x) {
  if (x.dim() < 1 || x.size(-1) != in_features_)
    throw ShapeError("Linear: expected input [*, " + std::to_string(in_features_) + "], got " +
                     shape_str(x.shape()));
  return linear(x, weight_, bias_);
}

nlohmann::json Linear::config() const {
  return {{"in_features", in_features_}, {"out_features", out_features_}, {"bias", bias_.defined()}};
}

}  // namespace aimc
