// Pooling layers (see pooling.h).
#include "layers/modules/pooling.h"

#include <nlohmann/json.hpp>

#include "engine/ops.h"

namespace aimc {

PoolNd::PoolNd(Kind kind, int dims, const Sizes& kernel, const Sizes& stride, const Sizes& padding)
    : kind_(kind), dims_(dims) {
  if (dims < 1 || dims > 3) throw ConfigError("PoolNd: spatial dims must be 1, 2 or 3, got " + std::to_string(dims));
  const std::string name = type_name();
  const auto d = static_cast<std::size_t>(dims);
  kernel_ = kernel.expand(d, 1, name + " kernel_size");
  stride_ = stride.empty() ? kernel_ : stride.expand(d, 1, name + " stride");
  padding_ = padding.expand(d, 0, name + " padding");
  for (std::size_t i = 0; i < d; ++i)
    if (2 * padding_[i] > kernel_[i])
      throw ConfigError(name + ": padding " + std::to_string(padding_[i]) + " must be at most half the kernel size " +
                        std::to_string(kernel_[i]));
}

std::string PoolNd::type_name() const {
  return std::string(kind_ == Kind::Max ? "MaxPool" : "AvgPool") + std::to_string(dims_) + "d";
}

Tensor PoolNd::forward(const Tensor& x) {
  if (x.dim() != dims_ + 2)
    throw ShapeError(type_name() + ": expected input [N, C, " + std::to_string(dims_) + " spatial dims], got " +
                     shape_str(x.shape()));
  return kind_ == Kind::Max ? max_pool(x, kernel_, stride_, padding_) : avg_pool(x, kernel_, stride_, padding_);
}

nlohmann::json PoolNd::config() const {
  return {{"kernel_size", kernel_}, {"stride", stride_}, {"padding", padding_}};
}

Tensor GlobalAvgPool::forward(const Tensor& x) {
  if (x.dim() < 3) throw ShapeError("GlobalAvgPool: expected input [N, C, *spatial], got " + shape_str(x.shape()));
  return global_avg_pool(x);
}

}  // namespace aimc
