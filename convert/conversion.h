// Conversion of a digital model to analog and back: every Linear becomes an
// AnalogLinear and every Conv1d/2d/3d an AnalogConv1d/2d/3d with the same
// weights (aihwkit's convert_to_analog; convert_to_analog_mapped makes the
// AnalogConvNdMapped forms), and the reverse. Layers are found by
// walking the module tree; their dotted names ("3", "4.0.conv1") are those of
// named_parameters without the parameter name.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "layers/config/rpu_config.h"
#include "layers/modules/module.h"

namespace aimc {

class Generator;

// The analog layer for one digital layer (conversion_map entry): built with
// `rpu_config`, drawing its seed from gen; nullptr leaves the layer digital.
using AnalogLayerFactory = std::function<std::shared_ptr<Module>(
    const Module& layer, const RPUConfig& rpu_config, Generator& gen, bool realistic_read_write)>;

// aihwkit's convert_to_analog arguments.
struct ConversionOptions {
  // The converted layers read and write their weights realistically
  // (set_weights programs the devices, get_weights reads through the tiles).
  bool realistic_read_write = false;
  // Digital type_name ("Linear", "Conv1d", "Conv2d", "Conv3d", ...) -> factory.
  // Empty: default_conversion_map(), or mapped_conversion_map() for
  // convert_to_analog_mapped.
  std::map<std::string, AnalogLayerFactory> conversion_map;
  // aihwkit's specific_rpu_config_fun: the config of the layer named `name`
  // (dotted), given the model-wide one. Unset: rpu_config for every layer.
  std::function<RPUConfig(const std::string& name, const Module& layer, const RPUConfig& rpu_config)>
      specific_rpu_config;
  // aihwkit's exclude_modules: dotted layer names that stay digital.
  std::vector<std::string> excluded_layer_names;
};

// Replaces the digital layers of `model` in place (Module::replace_child) and
// returns the model; a model that is itself a layer is returned converted (a
// new module). The tiles' seeds are drawn from gen, one per converted layer
// in tree order; a converted layer keeps the training mode of the one it
// replaces. ConfigError when a config cannot run.
std::shared_ptr<Module> convert_to_analog(std::shared_ptr<Module> model, const RPUConfig& rpu_config, Generator& gen,
                                          const ConversionOptions& options = {});
std::shared_ptr<Module> convert_to_analog(std::shared_ptr<Module> model, const RPUConfig& rpu_config, Generator& gen,
                                          const std::vector<std::string>& excluded_layer_names);

// Linear -> AnalogLinear, ConvNd -> AnalogConvNd (tiles split by element).
std::map<std::string, AnalogLayerFactory> default_conversion_map();
// Linear -> AnalogLinear(Mapped), ConvNd -> AnalogConvNdMapped (tiles split
// along whole input channels).
std::map<std::string, AnalogLayerFactory> mapped_conversion_map();

// aihwkit's convert_to_analog_mapped: the same with tile_array_class forced to
// "TileModuleArray", so every layer larger than mapping.max_input_size /
// max_output_size is split onto a grid of tiles, and convolutions become the
// Mapped forms (mapped_conversion_map unless options name a map).
std::shared_ptr<Module> convert_to_analog_mapped(std::shared_ptr<Module> model, const RPUConfig& rpu_config,
                                                 Generator& gen, const ConversionOptions& options = {});

// The RPU config family of the model's first analog layer (AnalogLinear or
// AnalogConvNd, in tree order), or "" for a digital model.
std::string analog_family(const Module& model);

// The reverse: every AnalogLinear / AnalogConvNd becomes a Linear / ConvNd
// with its weights (read as the layer's get_weights(force_exact) reads them:
// realistically for layers with realistic_read_write unless force_exact) and
// bias (gen feeds the digital constructors' draws, which are then overwritten).
std::shared_ptr<Module> convert_to_digital(std::shared_ptr<Module> model, Generator& gen, bool force_exact = false);

}  // namespace aimc
