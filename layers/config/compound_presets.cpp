// Compound presets (see compound_presets.h), as aihwkit 1.1.0's
// simulator/presets/configs.py builds them from the preset devices
// (layers/devices/pulsed/preset_devices.cpp) and PresetIOParameters /
// PresetUpdateParameters (layers/config/presets.h).
#include "layers/config/compound_presets.h"

#include <utility>

#include "engine/error.h"
#include "layers/config/presets.h"

namespace aimc {

using nlohmann::json;

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// The device families the compound presets are built from (the name between
// the prefix and "Preset": "ReRamSB" -> ReRamSBPresetDevice).
const char* const kFamilies[] = {"ReRamES", "ReRamSB", "Capacitor", "EcRam", "EcRamMO", "Idealized"};

// The preset device of a family; the Tiki-Taka presets use ReRamSB with
// subtract_symmetry_point = true.
json family_device(const std::string& family, bool symmetry_point) {
  json d{{"type", family + "PresetDevice"}};
  if (family == "ReRamSB" && symmetry_point) d["subtract_symmetry_point"] = true;
  return d;
}

UnitCellRPUConfig preset_base() {
  UnitCellRPUConfig c;
  c.forward = preset_io_parameters();
  c.backward = preset_io_parameters();
  c.update = preset_update_parameters();
  return c;
}

// aihwkit's TransferCompound presets: forward of the transfer without noise
// and bound management, transfer_update PresetUpdateParameters.
json tiki_taka(const std::string& family) {
  IOParameters read = preset_io_parameters();
  read.noise_management = NoiseManagementType::None;
  read.bound_management = BoundManagementType::None;
  const json d = family_device(family, true);
  return {{"type", "TransferCompound"},
          {"unit_cell_devices", {d, d}},
          {"transfer_forward", to_json(read)},
          {"transfer_update", preset_update_parameters().to_json()},
          {"transfer_every", 1.0},
          {"units_in_mbatch", true}};
}

// aihwkit's TTv2 presets: ChoppedTransferCompound without choppers
// (in_chop_prob 0) or with them (ChoppedTTv2*), auto_scale, one column per
// sample; the config's update has desired_bl 31 or 100. ChoppedTTv2EcRamPreset
// leaves fast_lr at the compound's default 1.0 (aihwkit's preset sets none).
struct Ttv2 {
  const char* family;
  float fast_lr, auto_granularity, chopped_in_chop_prob;
  int desired_bl;
  float chopped_fast_lr;
};
const Ttv2 kTtv2[] = {{"ReRamES", 0.5f, 1000.f, 0.01f, 31, 0.5f},  {"ReRamSB", 0.5f, 1000.f, 0.01f, 31, 0.5f},
                      {"Capacitor", 0.1f, 1000.f, 0.01f, 31, 0.1f}, {"EcRam", 0.1f, 500.f, 0.01f, 100, 1.0f},
                      {"EcRamMO", 0.1f, 500.f, 0.001f, 100, 0.1f},  {"Idealized", 0.1f, 500.f, 0.001f, 100, 0.1f}};

json ttv2(const Ttv2& t, bool chopped) {
  IOParameters read = preset_io_parameters();
  read.noise_management = NoiseManagementType::None;
  read.bound_management = BoundManagementType::None;
  UpdateParameters write = preset_update_parameters();
  write.desired_bl = 1;
  write.update_bl_management = false;
  write.update_management = false;
  const json d = family_device(t.family, true);
  return {{"type", "ChoppedTransferCompound"},
          {"unit_cell_devices", {d, d}},
          {"transfer_forward", to_json(read)},
          {"transfer_update", write.to_json()},
          {"units_in_mbatch", false},
          {"auto_scale", true},
          {"fast_lr", chopped ? t.chopped_fast_lr : t.fast_lr},
          {"auto_granularity", t.auto_granularity},
          {"in_chop_prob", chopped ? t.chopped_in_chop_prob : 0.f}};
}

// aihwkit's MixedPrecision*Preset devices (MixedPrecisionPCMPreset, on
// PCMPresetUnitCell, is built from pcm_unit_cell below).
const char* const kMixedPrecisionFamilies[] = {"ReRamES", "ReRamSB",   "Capacitor",   "EcRam",
                                               "EcRamMO", "Idealized", "GokmenVlasov"};

// aihwkit's PCMPresetUnitCell: a OneSidedUnitCell of two PCMPresetDevices
// refreshed after every mini-batch, the refresh read with
// PresetIOParameters and written with PresetUpdateParameters(desired_bl=31).
json pcm_unit_cell() {
  return {{"type", "OneSidedUnitCell"},
          {"unit_cell_devices", {json{{"type", "PCMPresetDevice"}}, json{{"type", "PCMPresetDevice"}}}},
          {"refresh_every", 1},
          {"units_in_mbatch", true},
          {"refresh_forward", to_json(preset_io_parameters())},
          {"refresh_update", preset_update_parameters().to_json()}};
}

json vector_cell(const std::string& family, int n) {
  json devices = json::array();
  for (int k = 0; k < n; ++k) devices.push_back(family_device(family, false));
  return {{"type", "VectorUnitCell"}, {"unit_cell_devices", devices}, {"update_policy", "SINGLE_RANDOM"}};
}

}  // namespace

std::vector<std::string> compound_rpu_config_presets() {
  std::vector<std::string> names;
  for (const char* f : kFamilies) names.push_back(std::string(f) + "2Preset");
  for (const char* f : kFamilies) names.push_back(std::string(f) + "4Preset");
  for (const char* f : kFamilies) names.push_back(std::string("TikiTaka") + f + "Preset");
  for (const Ttv2& t : kTtv2) names.push_back(std::string("TTv2") + t.family + "Preset");
  for (const Ttv2& t : kTtv2) names.push_back(std::string("ChoppedTTv2") + t.family + "Preset");
  for (const char* f : kMixedPrecisionFamilies) names.push_back(std::string("MixedPrecision") + f + "Preset");
  names.push_back("PCMPreset");
  names.push_back("MixedPrecisionPCMPreset");
  return names;
}

RPUConfig make_compound_rpu_config_preset(const std::string& name) {
  for (const char* family : kFamilies) {
    const std::string f = family;
    UnitCellRPUConfig c = preset_base();
    if (name == f + "2Preset" || name == f + "4Preset") {
      c.device = vector_cell(f, name == f + "2Preset" ? 2 : 4);
      return c;
    }
    if (name == "TikiTaka" + f + "Preset") {
      c.device = tiki_taka(f);
      return c;
    }
  }
  for (const Ttv2& t : kTtv2) {
    const bool plain = name == std::string("TTv2") + t.family + "Preset";
    if (plain || name == std::string("ChoppedTTv2") + t.family + "Preset") {
      UnitCellRPUConfig c = preset_base();
      c.device = ttv2(t, !plain);
      c.update.desired_bl = t.desired_bl;
      return c;
    }
  }
  if (name == "PCMPreset") {
    UnitCellRPUConfig c = preset_base();
    c.device = pcm_unit_cell();
    return c;
  }
  if (name == "MixedPrecisionPCMPreset") {
    // DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(device=PCMPresetUnitCell())).
    DigitalRankUpdateRPUConfig c;
    c.forward = preset_io_parameters();
    c.backward = preset_io_parameters();
    c.update = preset_update_parameters();
    c.device = {{"type", "MixedPrecisionCompound"}, {"device", pcm_unit_cell()}};
    return c;
  }
  for (const char* f : kMixedPrecisionFamilies) {
    if (name == std::string("MixedPrecision") + f + "Preset") {
      // DigitalRankUpdateRPUConfig(device=MixedPrecisionCompound(device=<preset device>)).
      DigitalRankUpdateRPUConfig c;
      c.forward = preset_io_parameters();
      c.backward = preset_io_parameters();
      c.update = preset_update_parameters();
      c.device = {{"type", "MixedPrecisionCompound"}, {"device", family_device(f, false)}};
      return c;
    }
  }
  throw ConfigError("unknown compound RPU config preset \"" + name + "\"; presets: " +
                    join(compound_rpu_config_presets()));
}

}  // namespace aimc
