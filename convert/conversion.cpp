// Digital <-> analog model conversion (see conversion.h).
#include "convert/conversion.h"

#include <algorithm>
#include <functional>

#include "engine/generator.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/modules/conv.h"
#include "layers/modules/linear.h"

namespace aimc {
namespace {

// A converted copy of `module`, or null when it is not a layer to convert.
using ConvertOne = std::function<std::shared_ptr<Module>(const Module&)>;

// Converts `module` (named `name`) or, when it is not a layer, its children.
std::shared_ptr<Module> convert_tree(const std::shared_ptr<Module>& module, const std::string& name,
                                     const ConvertOne& convert, const std::vector<std::string>& excluded) {
  const bool is_excluded = std::find(excluded.begin(), excluded.end(), name) != excluded.end();
  if (!is_excluded)
    if (auto converted = convert(*module)) {
      converted->train(module->is_training());
      return converted;
    }
  for (const auto& [child_name, child] : module->named_children()) {
    auto converted = convert_tree(child, name.empty() ? child_name : name + "." + child_name, convert, excluded);
    if (converted != child) module->replace_child(child_name, converted);
  }
  return module;
}

std::shared_ptr<Module> check_model(std::shared_ptr<Module> model, const char* where) {
  if (!model) throw ValueError(std::string(where) + ": model is null");
  return model;
}

}  // namespace

std::shared_ptr<Module> convert_to_analog(std::shared_ptr<Module> model, const RPUConfig& rpu_config, Generator& gen,
                                          const std::vector<std::string>& excluded_layer_names) {
  check_model(model, "convert_to_analog");
  const ConvertOne convert = [&](const Module& m) -> std::shared_ptr<Module> {
    if (const auto* linear = dynamic_cast<const Linear*>(&m)) return AnalogLinear::from_digital(*linear, rpu_config, gen);
    if (const auto* conv = dynamic_cast<const ConvNd*>(&m)) return AnalogConvNd::from_digital(*conv, rpu_config, gen);
    return nullptr;
  };
  return convert_tree(model, "", convert, excluded_layer_names);
}

std::shared_ptr<Module> convert_to_digital(std::shared_ptr<Module> model, Generator& gen) {
  check_model(model, "convert_to_digital");
  const ConvertOne convert = [&](const Module& m) -> std::shared_ptr<Module> {
    if (const auto* linear = dynamic_cast<const AnalogLinear*>(&m)) return linear->to_digital(gen);
    if (const auto* conv = dynamic_cast<const AnalogConvNd*>(&m)) return conv->to_digital(gen);
    return nullptr;
  };
  return convert_tree(model, "", convert, {});
}

}  // namespace aimc
