// Batch normalisation layers (see batch_norm.h).
#include "layers/modules/batch_norm.h"

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace aimc {

BatchNormNd::BatchNormNd(int spatial_dims, std::int64_t num_features, double eps, double momentum, bool affine)
    : spatial_dims_(spatial_dims), num_features_(num_features), eps_(eps), momentum_(momentum) {
  const std::string name = type_name();
  if (num_features < 1) throw ConfigError(name + ": num_features must be >= 1, got " + std::to_string(num_features));
  if (!(eps > 0)) throw ConfigError(name + ": eps must be > 0, got " + std::to_string(eps));
  if (!(momentum >= 0 && momentum <= 1))
    throw ConfigError(name + ": momentum must be in [0, 1], got " + std::to_string(momentum));
  if (affine) {
    weight_ = register_parameter("weight", Tensor::ones({num_features}));
    bias_ = register_parameter("bias", Tensor::zeros({num_features}));
  }
  running_mean_ = register_buffer("running_mean", Tensor::zeros({num_features}));
  running_var_ = register_buffer("running_var", Tensor::ones({num_features}));
  num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::scalar(0.0));
}

std::string BatchNormNd::type_name() const { return "BatchNorm" + std::to_string(spatial_dims_) + "d"; }

Tensor BatchNormNd::forward(const Tensor& x) {
  const bool rank_ok = spatial_dims_ == 1 ? (x.dim() == 2 || x.dim() == 3) : x.dim() == spatial_dims_ + 2;
  if (!rank_ok || x.size(1) != num_features_)
    throw ShapeError(type_name() + ": expected input [N, " + std::to_string(num_features_) +
                     (spatial_dims_ == 1 ? "] or [N, C, L]" : ", H, W]") + ", got " + shape_str(x.shape()));
  Tensor y = batch_norm(x, weight_, bias_, running_mean_, running_var_, is_training(), momentum_, eps_);
  if (is_training()) {
    NoGradGuard no_grad;
    num_batches_tracked_.fill_(num_batches_tracked_.item() + 1.0);
  }
  return y;
}

nlohmann::json BatchNormNd::config() const {
  return {{"num_features", num_features_}, {"eps", eps_}, {"momentum", momentum_}, {"affine", weight_.defined()}};
}

}  // namespace aimc
