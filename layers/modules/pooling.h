// Pooling layers: MaxPool1d/2d/3d, AvgPool1d/2d/3d (count_include_pad, as
// PyTorch's default) and GlobalAvgPool ([N, C, *S] -> [N, C]). The stride
// defaults to the kernel size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "layers/modules/module.h"
#include "layers/modules/sizes.h"

namespace aimc {

class PoolNd : public Module {
 public:
  enum class Kind { Max, Avg };
  // An empty stride means stride = kernel. Throws ConfigError on bad sizes.
  PoolNd(Kind kind, int dims, const Sizes& kernel, const Sizes& stride, const Sizes& padding);

  Tensor forward(const Tensor& x) override;
  std::string type_name() const override;
  nlohmann::json config() const override;

  const std::vector<std::int64_t>& kernel() const { return kernel_; }
  const std::vector<std::int64_t>& stride() const { return stride_; }
  const std::vector<std::int64_t>& padding() const { return padding_; }

 private:
  Kind kind_;
  int dims_;
  std::vector<std::int64_t> kernel_, stride_, padding_;
};

class MaxPool1d : public PoolNd {
 public:
  explicit MaxPool1d(const Sizes& kernel, const Sizes& stride = {}, const Sizes& padding = 0)
      : PoolNd(Kind::Max, 1, kernel, stride, padding) {}
};
class MaxPool2d : public PoolNd {
 public:
  explicit MaxPool2d(const Sizes& kernel, const Sizes& stride = {}, const Sizes& padding = 0)
      : PoolNd(Kind::Max, 2, kernel, stride, padding) {}
};
class MaxPool3d : public PoolNd {
 public:
  explicit MaxPool3d(const Sizes& kernel, const Sizes& stride = {}, const Sizes& padding = 0)
      : PoolNd(Kind::Max, 3, kernel, stride, padding) {}
};
class AvgPool1d : public PoolNd {
 public:
  explicit AvgPool1d(const Sizes& kernel, const Sizes& stride = {}, const Sizes& padding = 0)
      : PoolNd(Kind::Avg, 1, kernel, stride, padding) {}
};
class AvgPool2d : public PoolNd {
 public:
  explicit AvgPool2d(const Sizes& kernel, const Sizes& stride = {}, const Sizes& padding = 0)
      : PoolNd(Kind::Avg, 2, kernel, stride, padding) {}
};
class AvgPool3d : public PoolNd {
 public:
  explicit AvgPool3d(const Sizes& kernel, const Sizes& stride = {}, const Sizes& padding = 0)
      : PoolNd(Kind::Avg, 3, kernel, stride, padding) {}
};

// Mean over all spatial positions: [N, C, *S] -> [N, C].
class GlobalAvgPool : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "GlobalAvgPool"; }
};

}  // namespace aimc
