// BatchNorm1d ([N, C] or [N, C, L]) and BatchNorm2d ([N, C, H, W]), PyTorch
// semantics: training normalises with the batch statistics and updates the
// running estimates (momentum, unbiased variance); eval uses the running
// estimates. Parameters weight (ones) and bias (zeros) when affine; buffers
// running_mean (zeros), running_var (ones), num_batches_tracked (a float32
// scalar, counts training forwards).
#pragma once

#include <cstdint>

#include "layers/modules/module.h"

namespace aimc {

class BatchNormNd : public Module {
 public:
  // spatial_dims 1: input [N, C] or [N, C, L]; 2: input [N, C, H, W].
  BatchNormNd(int spatial_dims, std::int64_t num_features, double eps, double momentum, bool affine);

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;
  nlohmann::json config() const override;

  std::int64_t num_features() const { return num_features_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }

 private:
  int spatial_dims_;
  std::int64_t num_features_;
  double eps_, momentum_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

class BatchNorm1d : public BatchNormNd {
 public:
  explicit BatchNorm1d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true)
      : BatchNormNd(1, num_features, eps, momentum, affine) {}
};

class BatchNorm2d : public BatchNormNd {
 public:
  explicit BatchNorm2d(std::int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true)
      : BatchNormNd(2, num_features, eps, momentum, affine) {}
};

}  // namespace aimc
