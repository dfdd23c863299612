// Named RPU configuration presets (aihwkit's simulator/presets) and
// resolve_rpu_config, which turns a user's spec (JSON file, preset name or
// family name) into a validated RPUConfig.
#pragma once

#include <string>
#include <vector>

#include "layers/config/rpu_config.h"

namespace aimc {

// aihwkit's StandardHWATrainingPreset (presets/inference.py): an
// InferenceRPUConfig for the standard HWA-training benchmark of Rasch et al. 2023.
InferenceRPUConfig standard_hwa_training_preset();
// A FloatingPointRPUConfig baseline (see presets.cpp for what it holds).
FloatingPointRPUConfig floating_point_preset();

// aihwkit's PresetIOParameters (presets/utils.py): iterative bound
// management, abs-max noise management, 7-bit inputs, 9-bit outputs,
// out_bound 20, out_noise 0.1, no weight noise.
IOParameters preset_io_parameters();
// aihwkit's PresetUpdateParameters: desired_bl 31, stochastic compressed
// pulses, BL and update management on (the UpdateParameters defaults).
UpdateParameters preset_update_parameters();
// A SingleRPUConfig on the preset device `device` ({"type": "ReRamSBPresetDevice"}
// etc.) with PresetIOParameters forward and backward and PresetUpdateParameters
// (aihwkit's single-device presets in presets/configs.py).
SingleRPUConfig single_device_preset(const std::string& device);

// The presets: StandardHWATrainingPreset, FloatingPointPreset and the
// single-device training presets ReRamESPreset, ReRamSBPreset, ..., and the
// compound presets (layers/config/compound_presets.h: ReRamSB2Preset,
// TikiTakaReRamSBPreset, ...).
std::vector<std::string> rpu_config_presets();
// A preset by name; throws ConfigError listing the presets.
RPUConfig make_rpu_config_preset(const std::string& name);

// spec is
//  - a path to a JSON file (if the file exists or spec ends in ".json"):
//    the file holds RPUConfig JSON with a "family" field;
//  - a preset name (rpu_config_presets());
//  - a family name (rpu_config_families()) meaning its defaults.
// Unknown names throw ConfigError listing presets and families; a missing,
// unreadable, non-regular (a directory, a FIFO) or malformed file throws
// ConfigError naming the path and what is wrong. The result
// is validated.
RPUConfig resolve_rpu_config(const std::string& spec);

}  // namespace aimc
