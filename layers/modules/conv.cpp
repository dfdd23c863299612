// Convolution layers (see conv.h).
#include "layers/modules/conv.h"

#include <nlohmann/json.hpp>

#include "layers/modules/init.h"

namespace aimc {

ConvNd::ConvNd(int dims, std::int64_t in_channels, std::int64_t out_channels, const Sizes& kernel,
               const ConvOptions& options, Generator& gen)
    : dims_(dims), in_channels_(in_channels), out_channels_(out_channels) {
  const std::string name = "Conv" + std::to_string(dims) + "d";
  if (dims < 1 || dims > 3) throw ConfigError("ConvNd: spatial dims must be 1, 2 or 3, got " + std::to_string(dims));
  if (options.padding_mode != "zeros")
    throw ConfigError(name + ": padding_mode '" + options.padding_mode + "' is not supported (only 'zeros')");
  if (in_channels < 1 || out_channels < 1)
    throw ConfigError(name + ": in_channels and out_channels must be >= 1, got " + std::to_string(in_channels) +
                      " and " + std::to_string(out_channels));
  if (options.groups < 1) throw ConfigError(name + ": groups must be >= 1, got " + std::to_string(options.groups));
  if (in_channels % options.groups != 0 || out_channels % options.groups != 0)
    throw ConfigError(name + ": in_channels " + std::to_string(in_channels) + " and out_channels " +
                      std::to_string(out_channels) + " must be divisible by groups " +
                      std::to_string(options.groups));
  const auto d = static_cast<std::size_t>(dims);
  geometry_.kernel = kernel.expand(d, 1, name + " kernel_size");
  geometry_.stride = options.stride.expand(d, 1, name + " stride");
  geometry_.padding = options.padding.expand(d, 0, name + " padding");
  geometry_.dilation = options.dilation.expand(d, 1, name + " dilation");
  geometry_.groups = options.groups;

  Shape wshape{out_channels, in_channels / options.groups};
  for (auto k : geometry_.kernel) wshape.push_back(k);
  Tensor w = Tensor::empty(wshape);
  Tensor b = options.bias ? Tensor::empty({out_channels}) : Tensor();
  default_layer_init_(w, b, gen);
  weight_ = register_parameter("weight", w);
  if (options.bias) bias_ = register_parameter("bias", b);
}

Tensor ConvNd::forward(const Tensor& x) {
  if (x.dim() != dims_ + 2 || x.size(1) != in_channels_)
    throw ShapeError(type_name() + ": expected input [N, " + std::to_string(in_channels_) + ", " +
                     std::to_string(dims_) + " spatial dims], got " + shape_str(x.shape()));
  return conv(x, weight_, bias_, geometry_);
}

nlohmann::json ConvNd::config() const {
  return {{"in_channels", in_channels_},   {"out_channels", out_channels_},
          {"kernel_size", geometry_.kernel}, {"stride", geometry_.stride},
          {"padding", geometry_.padding},  {"dilation", geometry_.dilation},
          {"groups", geometry_.groups},    {"bias", bias_.defined()},
          {"padding_mode", "zeros"}};
}

}  // namespace aimc
