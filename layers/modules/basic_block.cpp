// ResNet basic block (see basic_block.h).
#include "layers/modules/basic_block.h"

#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "layers/modules/module_factory.h"

namespace aimc {

BasicBlock::BasicBlock(std::int64_t in_channels, std::int64_t out_channels, std::int64_t stride, Generator& gen)
    : in_channels_(in_channels), out_channels_(out_channels), stride_(stride) {
  conv1_ = register_module("conv1", std::make_shared<Conv2d>(in_channels, out_channels, 3, gen,
                                                             ConvOptions{.stride = stride, .padding = 1, .bias = false}));
  bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(out_channels));
  conv2_ = register_module("conv2", std::make_shared<Conv2d>(out_channels, out_channels, 3, gen,
                                                             ConvOptions{.stride = 1, .padding = 1, .bias = false}));
  bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    auto shortcut = std::make_shared<Sequential>();
    shortcut->add(std::make_shared<Conv2d>(in_channels, out_channels, 1, gen,
                                           ConvOptions{.stride = stride, .padding = 0, .bias = false}));
    shortcut->add(std::make_shared<BatchNorm2d>(out_channels));
    shortcut_ = register_module("shortcut", shortcut);
  }
}

void BasicBlock::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  Module::replace_child(name, module);  // checks the name
  if (name == "conv1") conv1_ = std::move(module);
  else if (name == "bn1") bn1_ = std::move(module);
  else if (name == "conv2") conv2_ = std::move(module);
  else if (name == "bn2") bn2_ = std::move(module);
  else if (name == "shortcut") shortcut_ = std::move(module);
}

Tensor BasicBlock::forward(const Tensor& x) {
  Tensor out = relu(bn1_->forward(conv1_->forward(x)));
  out = bn2_->forward(conv2_->forward(out));
  return relu(add(out, shortcut_ ? shortcut_->forward(x) : x));
}

nlohmann::json BasicBlock::config() const {
  // The children too: after convert_to_analog they are analog layers.
  nlohmann::json children = nlohmann::json::object();
  for (const auto& [name, child] : named_children()) children[name] = module_architecture(*child);
  return {{"in_channels", in_channels_}, {"out_channels", out_channels_}, {"stride", stride_}, {"children", children}};
}

}  // namespace aimc
