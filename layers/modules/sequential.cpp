// Sequential container (see sequential.h).
#include "layers/modules/sequential.h"

#include <string>

#include <nlohmann/json.hpp>

namespace aimc {

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers) {
  for (auto& layer : layers) add(std::move(layer));
}

Sequential& Sequential::add(std::shared_ptr<Module> layer) {
  add_child(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
  return *this;
}

const std::shared_ptr<Module>& Sequential::operator[](std::size_t i) const {
  if (i >= layers_.size())
    throw ValueError("Sequential: index " + std::to_string(i) + " out of range for " +
                     std::to_string(layers_.size()) + " layers");
  return layers_[i];
}

void Sequential::replace_child(const std::string& name, std::shared_ptr<Module> module) {
  Module::replace_child(name, module);  // checks the name
  layers_[std::stoul(name)] = std::move(module);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& layer : layers_) y = layer->forward(y);
  return y;
}

nlohmann::json Sequential::config() const {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : layers_) layers.push_back({{"type", layer->type_name()}, {"config", layer->config()}});
  return {{"layers", layers}};
}

}  // namespace aimc
