// aihwkit's presets of compound cells (simulator/presets/configs.py): the
// UnitCellRPUConfig presets *2Preset / *4Preset (VectorUnitCell),
// TikiTaka*Preset (TransferCompound), and the device presets they are made
// of (simulator/presets/devices.py) as device JSON.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/config/rpu_config.h"

namespace aimc {

// aihwkit's PresetIOParameters (presets/utils.py): ITERATIVE bound and ABS_MAX
// noise management, inp_res 1/126, out_res 1/510, out_bound 20, out_noise 0.1,
// no weight noise; the rest IOParameters' defaults.
IOParameters preset_io_parameters();

// A device preset by aihwkit's name ("ReRamSBPresetDevice", ...) as device
// JSON of its base type with the preset's values; ConfigError listing them.
nlohmann::json preset_device_json(const std::string& name);
std::vector<std::string> preset_device_names();

// The compound presets' names and configs; ConfigError listing them.
std::vector<std::string> compound_rpu_config_presets();
UnitCellRPUConfig make_compound_rpu_config_preset(const std::string& name);

}  // namespace aimc
