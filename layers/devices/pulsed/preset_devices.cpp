// aihwkit's preset devices (simulator/presets/devices.py): device types of
// a base type whose defaults are fitted to published device data. Their
// fields and values are aihwkit 1.1.0's; every field may still be set.
#include "engine/error.h"
#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {

std::shared_ptr<const DeviceModel> make_preset_device(const nlohmann::json& j, const std::string& where,
                                                      const char* preset, const char* base,
                                                      const nlohmann::json& defaults) {
  if (!j.is_object()) throw ConfigError(where + ": expected a JSON object, got " + j.dump());
  nlohmann::json merged = defaults;
  for (const auto& [key, value] : j.items())
    if (key != "type") merged[key] = value;
  merged["type"] = base;
  // The model was just built and nobody else holds it: naming it is safe.
  auto model = std::const_pointer_cast<DeviceModel>(make_device_model(merged, where));
  auto pulsed = std::dynamic_pointer_cast<PulsedDeviceModel>(model);
  if (!pulsed) throw ConfigError(where + ": preset base type " + base + " is not a pulsed device");
  pulsed->preset_type_ = preset;
  return pulsed;
}

namespace {

using nlohmann::json;

// Gong et al., Nat. Commun. 2018 (ReRAM), fit with the exponential step model.
const json& reram_es() {
  static const json j{{"dw_min", 0.00135},  {"up_down", 0.259359}, {"w_max", 1.0},        {"w_min", -1.0},
                      {"a", -0.5},          {"b", -0.5},           {"gamma_up", 5.0},     {"gamma_down", 5.0},
                      {"A_up", -1.18445},   {"A_down", -0.081404}, {"dw_min_dtod", 0.2},  {"up_down_dtod", 0.05},
                      {"w_max_dtod", 0.3},  {"w_min_dtod", 0.3},   {"dw_min_std", 5.0},   {"write_noise_std", 75.0}};
  return j;
}

// The same ReRAM, a loose soft-bounds fit calibrated to its symmetry point.
const json& reram_sb() {
  static const json j{{"dw_min", 0.002},          {"up_down", 0.0},           {"w_max", 1.25},
                      {"w_min", -0.75},           {"mult_noise", false},      {"dw_min_dtod", 0.3},
                      {"up_down_dtod", 0.01},     {"w_max_dtod", 0.3 / 1.25}, {"w_min_dtod", 0.3 / 0.75},
                      {"dw_min_std", 3.75},       {"write_noise_std", 56.0}};
  return j;
}

// Li et al., VLSI 2018 (capacitor), with some leakage.
const json& capacitor() {
  static const json j{{"dw_min", 0.005},        {"up_down", 0.0},          {"w_max", 1.0},
                      {"w_min", -1.0},          {"mult_noise", false},     {"gamma_up", 0.05},
                      {"gamma_down", 0.05},     {"dw_min_dtod", 0.1},      {"up_down_dtod", 0.06},
                      {"w_max_dtod", 0.07},     {"w_min_dtod", 0.07},      {"gamma_up_dtod", 0.01},
                      {"gamma_down_dtod", 0.01}, {"dw_min_std", 0.3},      {"write_noise_std", 0.0},
                      {"mean_bound_reference", true}, {"lifetime", 1.0e6}, {"lifetime_dtod", 0.3}};
  return j;
}

// Tang et al., IEDM 2018 (ECRAM), range shifted to the symmetry point.
const json& ecram() {
  static const json j{{"dw_min", 0.002},         {"up_down", 0.0},         {"w_max", 1.1724},
                      {"w_min", -0.8276},        {"mult_noise", true},     {"gamma_up", 0.1153},
                      {"gamma_down", 0.5085},    {"dw_min_dtod", 0.1},     {"up_down_dtod", 0.01},
                      {"w_max_dtod", 0.05},      {"w_min_dtod", 0.05},     {"gamma_up_dtod", 0.05},
                      {"gamma_down_dtod", 0.05}, {"dw_min_std", 0.3},      {"write_noise_std", 0.0},
                      {"mean_bound_reference", true}};
  return j;
}

// Kim et al., IEDM 2019 (metal-oxide ECRAM).
const json& ecram_mo() {
  static const json j{{"dw_min", 2.8214e-4},     {"up_down", 0.0},         {"w_max", 1.1714},
                      {"w_min", -0.8286},        {"mult_noise", true},     {"gamma_up", 0.4152},
                      {"gamma_down", 0.7342},    {"dw_min_dtod", 0.1},     {"up_down_dtod", 0.01},
                      {"w_max_dtod", 0.05},      {"w_min_dtod", 0.05},     {"gamma_up_dtod", 0.05},
                      {"gamma_down_dtod", 0.05}, {"dw_min_std", 2.0},      {"write_noise_std", 0.0},
                      {"mean_bound_reference", true}};
  return j;
}

// Gokmen & Vlasov 2016 without the asymmetry spread and with about 10000 states.
const json& idealized() {
  static const json j{{"dw_min", 0.0002},  {"dw_min_dtod", 0.3}, {"dw_min_std", 0.3}, {"up_down", 0.0},
                      {"up_down_dtod", 0.0}, {"w_max", 1.0},     {"w_min", -1.0},     {"w_max_dtod", 0.3},
                      {"w_min_dtod", 0.3}};
  return j;
}

// Gokmen & Vlasov 2016, scaled to the weight range -1..1 (1200 states).
const json& gokmen_vlasov() {
  static const json j{{"dw_min", 0.0016},   {"dw_min_dtod", 0.3}, {"dw_min_std", 0.3}, {"up_down", 0.0},
                      {"up_down_dtod", 0.01}, {"w_max", 1.0},     {"w_min", -1.0},     {"w_max_dtod", 0.3},
                      {"w_min_dtod", 0.3}};
  return j;
}

// Nandakumar et al. 2020 (GST PCM): one-sided, with the additive noise terms.
const json& pcm() {
  static const json j{{"dw_min", 0.01},        {"up_down", 0.0},         {"w_max", 2.0},
                      {"w_min", 0.0},          {"a", -1.0},              {"b", 0.0},
                      {"gamma_up", 2.5},       {"gamma_down", 2.5},      {"A_up", -27.235},
                      {"A_down", -2.235},      {"dw_min_dtod", 0.2},     {"up_down_dtod", 0.05},
                      {"w_max_dtod", 0.1},     {"w_min_dtod", 0.0},      {"dw_min_std", 0.6},
                      {"dw_min_std_add", 0.042}, {"dw_min_std_slope", 0.108}, {"write_noise_std", 0.0},
                      {"reset", 0.01},         {"reset_dtod", 0.02}};
  return j;
}

#define AIMC_PRESET(Name, Base, defaults)                                                    \
  PresetDeviceType {                                                                         \
    Name, [](const json& j, const std::string& where) {                                     \
      return make_preset_device(j, where, Name, Base, defaults());                           \
    }                                                                                        \
  }

}  // namespace

const std::vector<PresetDeviceType>& preset_device_types() {
  static const std::vector<PresetDeviceType> types{
      AIMC_PRESET("ReRamESPresetDevice", "ExpStepDevice", reram_es),
      AIMC_PRESET("ReRamSBPresetDevice", "SoftBoundsReferenceDevice", reram_sb),
      AIMC_PRESET("CapacitorPresetDevice", "LinearStepDevice", capacitor),
      AIMC_PRESET("EcRamPresetDevice", "LinearStepDevice", ecram),
      AIMC_PRESET("EcRamMOPresetDevice", "LinearStepDevice", ecram_mo),
      AIMC_PRESET("IdealizedPresetDevice", "ConstantStepDevice", idealized),
      AIMC_PRESET("GokmenVlasovPresetDevice", "ConstantStepDevice", gokmen_vlasov),
      AIMC_PRESET("PCMPresetDevice", "ExpStepDevice", pcm),
  };
  return types;
}

#undef AIMC_PRESET

}  // namespace aimc
