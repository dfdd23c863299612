// Compound presets (see compound_presets.h). Values from aihwkit 1.1.0's
// simulator/presets/devices.py, configs.py and utils.py.
#include "layers/config/compound_presets.h"

#include <utility>

#include "engine/error.h"

namespace aimc {

using nlohmann::json;

IOParameters preset_io_parameters() {
  IOParameters io;
  io.bound_management = BoundManagementType::Iterative;
  io.noise_management = NoiseManagementType::AbsMax;
  io.inp_res = 1.0f / 126.0f;  // 1/(2^7 − 2)
  io.inp_sto_round = false;
  io.out_bound = 20.0f;
  io.out_noise = 0.1f;
  io.out_res = 1.0f / 510.0f;  // 1/(2^9 − 2)
  io.w_noise = 0.0f;
  io.w_noise_type = WeightNoiseType::None;
  return io;
}

namespace {

// name -> device JSON (base type and the preset's fields; the rest default).
const std::vector<std::pair<std::string, json>>& device_presets() {
  static const std::vector<std::pair<std::string, json>> table = {
      {"ReRamESPresetDevice",
       {{"type", "ExpStepDevice"}, {"dw_min", 0.00135}, {"up_down", 0.259359}, {"w_max", 1.0}, {"w_min", -1.0},
        {"a", -0.5}, {"b", -0.5}, {"gamma_up", 5.0}, {"gamma_down", 5.0}, {"A_up", -1.18445}, {"A_down", -0.081404},
        {"dw_min_dtod", 0.2}, {"up_down_dtod", 0.05}, {"w_max_dtod", 0.3}, {"w_min_dtod", 0.3}, {"dw_min_std", 5.0},
        {"write_noise_std", 75.0}}},
      {"ReRamSBPresetDevice",
       {{"type", "SoftBoundsReferenceDevice"}, {"dw_min", 0.002}, {"up_down", 0.0}, {"w_max", 1.25}, {"w_min", -0.75},
        {"mult_noise", false}, {"dw_min_dtod", 0.3}, {"up_down_dtod", 0.01}, {"w_max_dtod", 0.3 / 1.25},
        {"w_min_dtod", 0.3 / 0.75}, {"dw_min_std", 3.75}, {"write_noise_std", 56.0}}},
      {"CapacitorPresetDevice",
       {{"type", "LinearStepDevice"}, {"dw_min", 0.005}, {"up_down", 0.0}, {"w_max", 1.0}, {"w_min", -1.0},
        {"mult_noise", false}, {"gamma_up", 0.05}, {"gamma_down", 0.05}, {"dw_min_dtod", 0.1}, {"up_down_dtod", 0.06},
        {"w_max_dtod", 0.07}, {"w_min_dtod", 0.07}, {"gamma_up_dtod", 0.01}, {"gamma_down_dtod", 0.01},
        {"dw_min_std", 0.3}, {"write_noise_std", 0.0}, {"mean_bound_reference", true}, {"lifetime", 1.0e6},
        {"lifetime_dtod", 0.3}}},
      {"EcRamPresetDevice",
       {{"type", "LinearStepDevice"}, {"dw_min", 0.002}, {"up_down", 0.0}, {"w_max", 1.1724}, {"w_min", -0.8276},
        {"mult_noise", true}, {"gamma_up", 0.1153}, {"gamma_down", 0.5085}, {"dw_min_dtod", 0.1}, {"up_down_dtod", 0.01},
        {"w_max_dtod", 0.05}, {"w_min_dtod", 0.05}, {"gamma_up_dtod", 0.05}, {"gamma_down_dtod", 0.05},
        {"dw_min_std", 0.3}, {"write_noise_std", 0.0}, {"mean_bound_reference", true}}},
      {"EcRamMOPresetDevice",
       {{"type", "LinearStepDevice"}, {"dw_min", 2.8214e-4}, {"up_down", 0.0}, {"w_max", 1.1714}, {"w_min", -0.8286},
        {"mult_noise", true}, {"gamma_up", 0.4152}, {"gamma_down", 0.7342}, {"dw_min_dtod", 0.1}, {"up_down_dtod", 0.01},
        {"w_max_dtod", 0.05}, {"w_min_dtod", 0.05}, {"gamma_up_dtod", 0.05}, {"gamma_down_dtod", 0.05},
        {"dw_min_std", 2.0}, {"write_noise_std", 0.0}, {"mean_bound_reference", true}}},
      {"IdealizedPresetDevice",
       {{"type", "ConstantStepDevice"}, {"dw_min", 0.0002}, {"dw_min_dtod", 0.3}, {"dw_min_std", 0.3}, {"up_down", 0.0},
        {"up_down_dtod", 0.0}, {"w_max", 1.0}, {"w_min", -1.0}, {"w_max_dtod", 0.3}, {"w_min_dtod", 0.3}}},
      {"GokmenVlasovPresetDevice",
       {{"type", "ConstantStepDevice"}, {"dw_min", 0.0016}, {"dw_min_dtod", 0.3}, {"dw_min_std", 0.3}, {"up_down", 0.0},
        {"up_down_dtod", 0.01}, {"w_max", 1.0}, {"w_min", -1.0}, {"w_max_dtod", 0.3}, {"w_min_dtod", 0.3}}},
      {"PCMPresetDevice",
       {{"type", "ExpStepDevice"}, {"dw_min", 0.01}, {"up_down", 0.0}, {"w_max", 2.0}, {"w_min", 0.0}, {"a", -1.0},
        {"b", 0.0}, {"gamma_up", 2.5}, {"gamma_down", 2.5}, {"A_up", -27.235}, {"A_down", -2.235},
        {"dw_min_dtod", 0.2}, {"up_down_dtod", 0.05}, {"w_max_dtod", 0.1}, {"w_min_dtod", 0.0}, {"dw_min_std", 0.6},
        {"dw_min_std_add", 0.042}, {"dw_min_std_slope", 0.108}, {"write_noise_std", 0.0}, {"reset", 0.01},
        {"reset_dtod", 0.02}}},
  };
  return table;
}

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
  json d = preset_device_json(family + "PresetDevice");
  if (family == "ReRamSB" && symmetry_point) d["subtract_symmetry_point"] = true;
  return d;
}

UnitCellRPUConfig preset_base() {
  UnitCellRPUConfig c;
  c.forward = preset_io_parameters();
  c.backward = preset_io_parameters();
  c.update = UpdateParameters{};  // PresetUpdateParameters: desired_bl 31, both managements (the defaults)
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
          {"transfer_update", UpdateParameters{}.to_json()},
          {"transfer_every", 1.0},
          {"units_in_mbatch", true}};
}

json vector_cell(const std::string& family, int n) {
  json devices = json::array();
  for (int k = 0; k < n; ++k) devices.push_back(family_device(family, false));
  return {{"type", "VectorUnitCell"}, {"unit_cell_devices", devices}, {"update_policy", "SINGLE_RANDOM"}};
}

}  // namespace

json preset_device_json(const std::string& name) {
  for (const auto& [n, j] : device_presets())
    if (n == name) return j;
  throw ConfigError("unknown device preset \"" + name + "\"; presets: " + join(preset_device_names()));
}

std::vector<std::string> preset_device_names() {
  std::vector<std::string> names;
  for (const auto& e : device_presets()) names.push_back(e.first);
  return names;
}

std::vector<std::string> compound_rpu_config_presets() {
  std::vector<std::string> names;
  for (const char* f : kFamilies) names.push_back(std::string(f) + "2Preset");
  for (const char* f : kFamilies) names.push_back(std::string(f) + "4Preset");
  for (const char* f : kFamilies) names.push_back(std::string("TikiTaka") + f + "Preset");
  return names;
}

UnitCellRPUConfig make_compound_rpu_config_preset(const std::string& name) {
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
  throw ConfigError("unknown compound RPU config preset \"" + name + "\"; presets: " +
                    join(compound_rpu_config_presets()));
}

}  // namespace aimc
