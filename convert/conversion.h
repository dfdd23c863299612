// Conversion of a digital model to analog and back: every Linear becomes an
// AnalogLinear and every Conv1d/2d/3d an AnalogConv1d/2d/3d with the same
// weights (aihwkit's convert_to_analog), and the reverse. Layers are found by
// walking the module tree; their dotted names ("3", "4.0.conv1") are those of
// named_parameters without the parameter name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/config/rpu_config.h"
#include "layers/modules/module.h"

namespace aimc {

class Generator;

// Replaces the digital layers of `model` in place (Module::replace_child) and
// returns the model; a model that is itself a Linear or ConvNd is returned
// converted (a new module). Layers whose dotted names are in
// excluded_layer_names stay digital. The tiles' seeds are drawn from gen, one
// per converted layer in tree order; a converted layer keeps the training
// mode of the one it replaces. ConfigError when the config cannot run.
std::shared_ptr<Module> convert_to_analog(std::shared_ptr<Module> model, const RPUConfig& rpu_config, Generator& gen,
                                          const std::vector<std::string>& excluded_layer_names = {});

// The reverse: every AnalogLinear / AnalogConvNd becomes a Linear / ConvNd with
// its exact weights and bias (gen feeds the digital constructors' draws, which
// are then overwritten).
std::shared_ptr<Module> convert_to_digital(std::shared_ptr<Module> model, Generator& gen);

}  // namespace aimc
