// Conv1d / Conv2d / Conv3d: cross-correlation of x [N, C_in, *S] with a
// weight [C_out, C_in/groups, *kernel] plus a bias [C_out]; PyTorch semantics
// and initialisation (weight and bias uniform in +-1/sqrt(fan_in), fan_in =
// C_in/groups * prod(kernel)). Only padding_mode "zeros" is supported.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/ops.h"
#include "layers/modules/module.h"
#include "layers/modules/sizes.h"

namespace aimc {

class Generator;

// The optional arguments, e.g. ConvOptions{.stride = 2, .padding = 1, .bias = false}.
struct ConvOptions {
  Sizes stride = 1;
  Sizes padding = 0;
  Sizes dilation = 1;
  std::int64_t groups = 1;
  bool bias = true;
  std::string padding_mode = "zeros";
};

class ConvNd : public Module {
 public:
  // dims: 1, 2 or 3 spatial dims. Throws ConfigError on bad arguments.
  ConvNd(int dims, std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel,
         const ConvOptions& options, Generator& gen);

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Conv" + std::to_string(dims_) + "d"; }
  nlohmann::json config() const override;

  int spatial_dims() const { return dims_; }
  std::int64_t in_channels() const { return in_channels_; }
  std::int64_t out_channels() const { return out_channels_; }
  const ConvGeometry& geometry() const { return geometry_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias

 private:
  int dims_;
  std::int64_t in_channels_, out_channels_;
  ConvGeometry geometry_;
  Tensor weight_, bias_;
};

class Conv1d : public ConvNd {
 public:
  Conv1d(std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel, Generator& gen,
         const ConvOptions& options = {})
      : ConvNd(1, in_channels, out_channels, kernel, options, gen) {}
};

class Conv2d : public ConvNd {
 public:
  Conv2d(std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel, Generator& gen,
         const ConvOptions& options = {})
      : ConvNd(2, in_channels, out_channels, kernel, options, gen) {}
};

class Conv3d : public ConvNd {
 public:
  Conv3d(std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel, Generator& gen,
         const ConvOptions& options = {})
      : ConvNd(3, in_channels, out_channels, kernel, options, gen) {}
};

}  // namespace aimc
