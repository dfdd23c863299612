// Module factory: any module tree rebuilt from its architecture JSON.
//
// The architecture of a module is {"type": type_name(), "config": config()}
// (module_architecture). Containers write their children's architectures in
// their own config (Sequential's "layers", BasicBlock's "children", Graph's
// nodes), so the JSON of the root describes the whole tree, analog layers
// with their RPU configs included. module_from_config reads it back through a
// registry of builders keyed on the type name, so a checkpoint can rebuild a
// model that no named builder makes. Weights are not part of it: the builders
// draw initial values from `gen` as the constructors do, and a state dict
// (load_state_dict, a checkpoint) then sets them.
//
// The JSON is treated as untrusted: a wrong type, a missing required field,
// an unknown field or type throws ConfigError naming the dotted path of the
// field ("architecture.config.layers[3].config.in_features"); nesting deeper
// than kMaxJsonDepth modules is refused, and `max_elements` bounds the
// parameter and buffer elements the tree may allocate (a checkpoint passes
// the element count of its tensors, which a genuine model cannot exceed).
//
// Built-in types: Sequential, BasicBlock, Graph, Linear, Conv1d/2d/3d,
// BatchNorm1d/2d, ReLU, LeakyReLU, Sigmoid, Tanh, GELU, MaxPool1d/2d/3d,
// AvgPool1d/2d/3d, GlobalAvgPool, Flatten, Dropout, AnalogLinear,
// AnalogConv1d/2d/3d and AnalogConv1d/2d/3dMapped. register_module_type adds
// a plug-in type.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/modules/module.h"

namespace aimc {

class Generator;

// {"type": module.type_name(), "config": module.config()}.
nlohmann::json module_architecture(const Module& module);

// What a builder gets besides its config: the generator for initial values,
// the element budget and nested builds.
class ModuleBuilder {
 public:
  ModuleBuilder(Generator& gen, std::int64_t max_elements, int depth = 0)
      : gen_(gen), remaining_(max_elements), depth_(depth) {}

  Generator& gen() { return gen_; }
  // A child module from its architecture {"type", "config"}; `where` is its
  // dotted path for messages.
  std::shared_ptr<Module> build(const nlohmann::json& architecture, const std::string& where);
  // Takes `elements` (a product of sizes, checked for overflow) from the
  // budget; ConfigError naming `where` when the budget is exceeded.
  void charge(const std::vector<std::int64_t>& sizes, const std::string& where);
  // The same check without taking anything (a size that a later build replaces).
  void check(const std::vector<std::int64_t>& sizes, const std::string& where) const;
  std::int64_t remaining() const { return remaining_; }

 private:
  std::int64_t elements(const std::vector<std::int64_t>& sizes, const std::string& where) const;
  Generator& gen_;
  std::int64_t remaining_;
  int depth_;
};

// A builder: the module of one type from its config object; `where` is the
// dotted path of that config ("....config") for messages.
using ModuleFactory =
    std::function<std::shared_ptr<Module>(const nlohmann::json& config, const std::string& where, ModuleBuilder& b)>;

// The module tree of an architecture {"type": ..., "config": {...}}; `where`
// names the JSON in messages. ConfigError on any invalid field (see above).
std::shared_ptr<Module> module_from_config(const nlohmann::json& architecture, Generator& gen,
                                           std::int64_t max_elements = std::numeric_limits<std::int64_t>::max(),
                                           const std::string& where = "architecture");

// Adds a plug-in module type; ConfigError if the name is taken.
void register_module_type(const std::string& type, ModuleFactory factory);
// The known type names, built-ins first.
std::vector<std::string> module_type_names();
// The first type in the module tree (depth first) that module_from_config
// cannot build (not registered), or "" when it can build them all.
std::string unknown_module_type(const Module& module);

}  // namespace aimc
