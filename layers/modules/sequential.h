// Sequential: a container that applies its children in order. Children are
// named "0", "1", ... so parameters read "3.weight" as in PyTorch.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "layers/modules/module.h"

namespace aimc {

class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers);

  // Appends a layer; returns this container for chaining.
  Sequential& add(std::shared_ptr<Module> layer);
  std::size_t size() const { return layers_.size(); }
  // The i-th layer; throws ValueError when out of range.
  const std::shared_ptr<Module>& operator[](std::size_t i) const;

  Tensor forward(const Tensor& x) override;
  // Also replaces the layer the forward pass runs (name "0", "1", ...).
  void replace_child(const std::string& name, std::shared_ptr<Module> module) override;
  std::string type_name() const override { return "Sequential"; }
  // {"layers": [{"type": ..., "config": ...}, ...]}
  nlohmann::json config() const override;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

// aihwkit's AnalogSequential: every Module here already has the analog
// helpers (program_analog_weights, drift_analog_weights, reseed_analog,
// post_update_step), so the analog container is Sequential itself.
using AnalogSequential = Sequential;

}  // namespace aimc
