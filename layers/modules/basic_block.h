// BasicBlock: the ResNet basic residual block (He et al. 2016, CIFAR form):
//   out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))
// conv1 is 3x3 with the given stride, conv2 3x3 stride 1, both without bias.
// The shortcut is the identity, or conv1x1(stride) + BatchNorm when the
// channels or the stride change. Children: conv1, bn1, conv2, bn2[, shortcut].
#pragma once

#include <cstdint>
#include <memory>

#include "layers/modules/batch_norm.h"
#include "layers/modules/conv.h"
#include "layers/modules/module.h"
#include "layers/modules/sequential.h"

namespace aimc {

class Generator;

class BasicBlock : public Module {
 public:
  BasicBlock(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride, Generator& gen);

  Tensor forward(const Tensor& x) override;
  // Also replaces the handle the forward pass uses.
  void replace_child(const std::string& name, std::shared_ptr<Module> module) override;
  std::string type_name() const override { return "BasicBlock"; }
  // {"in_channels", "out_channels", "stride", "children": {name: {"type",
  // "config"}}}; the children's architectures keep converted (analog) ones.
  nlohmann::json config() const override;

 private:
  std::int64_t in_channels_, out_channels_, stride_;
  // Typed as Module so that model conversion can replace them (AnalogConv2d).
  std::shared_ptr<Module> conv1_, conv2_, bn1_, bn2_;
  std::shared_ptr<Module> shortcut_;  // null for the identity
};

}  // namespace aimc
