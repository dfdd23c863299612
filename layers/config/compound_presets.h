// aihwkit's presets of compound cells (simulator/presets/configs.py): the
// UnitCellRPUConfig presets *2Preset / *4Preset (VectorUnitCell),
// TikiTaka*Preset (TransferCompound), TTv2*Preset and ChoppedTTv2*Preset
// (ChoppedTransferCompound; those with desired_bl 31), and the
// DigitalRankUpdateRPUConfig presets MixedPrecision*Preset, and PCMPreset
// (OneSidedUnitCell with refresh), made of the preset devices
// ({"type": "ReRamSBPresetDevice"}, ...).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/config/rpu_config.h"

namespace aimc {

// The compound presets' names and configs; ConfigError listing them.
std::vector<std::string> compound_rpu_config_presets();
RPUConfig make_compound_rpu_config_preset(const std::string& name);

}  // namespace aimc
