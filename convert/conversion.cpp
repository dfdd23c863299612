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

// A converted copy of `module` (named `name`), or null when it is not a layer to convert.
using ConvertOne = std::function<std::shared_ptr<Module>(Module&, const std::string& name)>;

// Converts `module` (named `name`) or, when it is not a layer, its children.
std::shared_ptr<Module> convert_tree(const std::shared_ptr<Module>& module, const std::string& name,
                                     const ConvertOne& convert, const std::vector<std::string>& excluded) {
  const bool is_excluded = std::find(excluded.begin(), excluded.end(), name) != excluded.end();
  if (!is_excluded)
    if (auto converted = convert(*module, name)) {
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

namespace {
std::map<std::string, AnalogLayerFactory> conversion_map(bool channel_split) {
  const AnalogLayerFactory linear = [](const Module& m, const RPUConfig& c, Generator& gen, bool realistic) {
    return std::static_pointer_cast<Module>(
        AnalogLinear::from_digital(dynamic_cast<const Linear&>(m), c, gen, realistic));
  };
  const AnalogLayerFactory conv = [channel_split](const Module& m, const RPUConfig& c, Generator& gen,
                                                  bool realistic) {
    return std::static_pointer_cast<Module>(
        AnalogConvNd::from_digital(dynamic_cast<const ConvNd&>(m), c, gen, realistic, channel_split));
  };
  return {{"Linear", linear}, {"Conv1d", conv}, {"Conv2d", conv}, {"Conv3d", conv}};
}
}  // namespace

std::map<std::string, AnalogLayerFactory> default_conversion_map() { return conversion_map(false); }
std::map<std::string, AnalogLayerFactory> mapped_conversion_map() { return conversion_map(true); }

std::shared_ptr<Module> convert_to_analog(std::shared_ptr<Module> model, const RPUConfig& rpu_config, Generator& gen,
                                          const ConversionOptions& options) {
  check_model(model, "convert_to_analog");
  const auto map = options.conversion_map.empty() ? default_conversion_map() : options.conversion_map;
  const ConvertOne convert = [&](Module& m, const std::string& name) -> std::shared_ptr<Module> {
    const auto it = map.find(m.type_name());
    if (it == map.end()) return nullptr;
    const RPUConfig config =
        options.specific_rpu_config ? options.specific_rpu_config(name, m, rpu_config) : rpu_config;
    return it->second(m, config, gen, options.realistic_read_write);
  };
  return convert_tree(model, "", convert, options.excluded_layer_names);
}

std::shared_ptr<Module> convert_to_analog(std::shared_ptr<Module> model, const RPUConfig& rpu_config, Generator& gen,
                                          const std::vector<std::string>& excluded_layer_names) {
  ConversionOptions options;
  options.excluded_layer_names = excluded_layer_names;
  return convert_to_analog(std::move(model), rpu_config, gen, options);
}

std::shared_ptr<Module> convert_to_analog_mapped(std::shared_ptr<Module> model, const RPUConfig& rpu_config,
                                                 Generator& gen, const ConversionOptions& options) {
  RPUConfig mapped = rpu_config;
  std::visit([](auto& family) { family.tile_array_class = "TileModuleArray"; }, mapped.config);
  ConversionOptions o = options;
  if (o.conversion_map.empty()) o.conversion_map = mapped_conversion_map();
  if (o.specific_rpu_config) {
    // A per-layer config is mapped too.
    o.specific_rpu_config = [fn = options.specific_rpu_config](const std::string& name, const Module& layer,
                                                                const RPUConfig& c) {
      RPUConfig r = fn(name, layer, c);
      std::visit([](auto& family) { family.tile_array_class = "TileModuleArray"; }, r.config);
      return r;
    };
  }
  return convert_to_analog(std::move(model), mapped, gen, o);
}

std::string analog_family(const Module& model) {
  if (const auto* linear = dynamic_cast<const AnalogLinear*>(&model)) return linear->rpu_config().family();
  if (const auto* conv = dynamic_cast<const AnalogConvNd*>(&model)) return conv->rpu_config().family();
  for (const auto& [name, child] : model.named_children())
    if (std::string family = analog_family(*child); !family.empty()) return family;
  return "";
}

std::shared_ptr<Module> convert_to_digital(std::shared_ptr<Module> model, Generator& gen, bool force_exact) {
  check_model(model, "convert_to_digital");
  const ConvertOne convert = [&](Module& m, const std::string&) -> std::shared_ptr<Module> {
    if (auto* linear = dynamic_cast<AnalogLinear*>(&m)) return linear->to_digital(gen, force_exact);
    if (auto* conv = dynamic_cast<AnalogConvNd*>(&m)) return conv->to_digital(gen, force_exact);
    return nullptr;
  };
  return convert_tree(model, "", convert, {});
}

}  // namespace aimc
