// RPU configuration presets and resolve_rpu_config.
#include "layers/config/presets.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "engine/json_input.h"
#include "layers/config/compound_presets.h"

namespace aimc {

InferenceRPUConfig standard_hwa_training_preset() {
  // Taken from aihwkit src/aihwkit/simulator/presets/inference.py
  // (StandardHWATrainingPreset) and presets/utils.py (PresetIOParameters, the
  // base of its forward). Fields not named there keep InferenceRPUConfig's
  // defaults (backward perfect, modifier NONE).
  InferenceRPUConfig c;

  // mapping = MappingParameter(weight_scaling_omega=1.0, weight_scaling_columnwise=True,
  //   max_input_size=512, max_output_size=0, digital_bias=True,
  //   learn_out_scaling=True, out_scaling_columnwise=True)
  c.mapping.weight_scaling_omega = 1.0f;
  c.mapping.weight_scaling_columnwise = true;
  c.mapping.max_input_size = 512;
  c.mapping.max_output_size = 0;
  c.mapping.digital_bias = true;
  c.mapping.learn_out_scaling = true;
  c.mapping.out_scaling_columnwise = true;

  // forward = PresetIOParameters(inp_res=254.0, out_res=254.0, bound_management=NONE,
  //   noise_management=CONSTANT, nm_thres=1.0, w_noise=0.0175, w_noise_type=PCM_READ,
  //   ir_drop=1.0, out_noise=0.04, out_bound=10.0); the remaining PresetIOParameters
  //   fields (inp_sto_round=False) equal the IOParameters defaults.
  //   254.0 steps are stored as the resolution 1/254.
  IOParameters& f = c.forward;
  f.inp_res = 1.0f / 254.0f;
  f.out_res = 1.0f / 254.0f;
  f.bound_management = BoundManagementType::None;
  f.noise_management = NoiseManagementType::Constant;
  f.nm_thres = 1.0f;
  f.w_noise = 0.0175f;
  f.w_noise_type = WeightNoiseType::PCMRead;
  f.ir_drop = 1.0f;
  f.out_noise = 0.04f;
  f.out_bound = 10.0f;

  // remap = WeightRemapParameter(remapped_wmax=1.0, type=CHANNELWISE_SYMMETRIC)
  c.remap.remapped_wmax = 1.0f;
  c.remap.type = WeightRemapType::ChannelwiseSymmetric;

  // noise_model = PCMLikeNoiseModel(), drift_compensation = GlobalDriftCompensation()
  c.noise_model = nlohmann::json{{"type", "PCMLikeNoiseModel"}};
  c.drift_compensation = nlohmann::json{{"type", "GlobalDriftCompensation"}};

  // pre_post.input_range = InputRangeParameter(enable=True, init_value=3.0,
  //   init_from_data=100, init_std_alpha=3.0, decay=0.001, input_min_percentage=0.95,
  //   output_min_percentage=0.95, manage_output_clipping=False, gradient_scale=1.0,
  //   gradient_relative=True)
  InputRangeParameter& ir = c.pre_post.input_range;
  ir.enable = true;
  ir.init_value = 3.0f;
  ir.init_from_data = 100;
  ir.init_std_alpha = 3.0f;
  ir.decay = 0.001f;
  ir.input_min_percentage = 0.95f;
  ir.output_min_percentage = 0.95f;
  ir.manage_output_clipping = false;
  ir.gradient_scale = 1.0f;
  ir.gradient_relative = true;

  // clip = WeightClipParameter(type=FIXED_VALUE, fixed_value=1.0)
  c.clip.type = WeightClipType::FixedValue;
  c.clip.fixed_value = 1.0f;
  return c;
}

FloatingPointRPUConfig floating_point_preset() {
  // aihwkit exports FloatingPointPreset from presets/inference.py next to
  // StandardHWATrainingPreset, but its definition was not available to us:
  // here it is FloatingPointRPUConfig with its defaults (mapping and pre_post
  // as aihwkit's MappingParameter / PrePostProcessingParameter defaults).
  return FloatingPointRPUConfig{};
}

IOParameters preset_io_parameters() {
  // presets/utils.py PresetIOParameters(IOParameters): the fields it sets.
  IOParameters io;
  io.bound_management = BoundManagementType::Iterative;
  io.noise_management = NoiseManagementType::AbsMax;
  io.inp_res = 1.0f / (128.0f - 2.0f);  // 7 bits
  io.inp_sto_round = false;
  io.out_bound = 20.0f;
  io.out_noise = 0.1f;
  io.out_res = 1.0f / (512.0f - 2.0f);  // 9 bits
  io.w_noise = 0.0f;
  io.w_noise_type = WeightNoiseType::None;
  return io;
}

UpdateParameters preset_update_parameters() {
  UpdateParameters up;
  up.desired_bl = 31;
  up.pulse_type = PulseType::StochasticCompressed;
  up.update_bl_management = true;
  up.update_management = true;
  return up;
}

SingleRPUConfig single_device_preset(const std::string& device) {
  SingleRPUConfig c;
  c.device = nlohmann::json{{"type", device}};
  c.forward = preset_io_parameters();
  c.backward = preset_io_parameters();
  c.update = preset_update_parameters();
  return c;
}

namespace {

// presets/configs.py: the single-device presets and their devices.
const std::vector<std::pair<std::string, std::string>>& single_device_presets() {
  static const std::vector<std::pair<std::string, std::string>> presets{
      {"ReRamESPreset", "ReRamESPresetDevice"},         {"ReRamSBPreset", "ReRamSBPresetDevice"},
      {"CapacitorPreset", "CapacitorPresetDevice"},     {"EcRamPreset", "EcRamPresetDevice"},
      {"EcRamMOPreset", "EcRamMOPresetDevice"},         {"IdealizedPreset", "IdealizedPresetDevice"},
      {"GokmenVlasovPreset", "GokmenVlasovPresetDevice"}};
  return presets;
}

}  // namespace

std::vector<std::string> rpu_config_presets() {
  std::vector<std::string> names{"StandardHWATrainingPreset", "FloatingPointPreset"};
  for (const auto& [name, device] : single_device_presets()) names.push_back(name);
  for (const auto& n : compound_rpu_config_presets()) names.push_back(n);
  return names;
}

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool is_known(const std::vector<std::string>& names, const std::string& name) {
  for (const auto& n : names) {
    if (n == name) return true;
  }
  return false;
}

RPUConfig read_rpu_config_file(const std::string& path) {
  // Only a regular file: opening a FIFO blocks forever, a directory reads as
  // "malformed JSON".
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) throw ConfigError("RPU config file " + path + ": no such file");
  if (std::filesystem::is_directory(st)) throw ConfigError("RPU config file " + path + ": is a directory, not a file");
  if (!std::filesystem::is_regular_file(st))
    throw ConfigError("RPU config file " + path + ": not a regular file (a FIFO, device or socket)");
  std::ifstream in(path);
  if (!in) throw ConfigError("RPU config file " + path + ": cannot open it for reading");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string json_error;
  const std::optional<nlohmann::json> j = parse_json_bounded<nlohmann::json>(buffer.str(), json_error);
  if (!j) throw ConfigError("RPU config file " + path + ": " + json_error);
  try {
    RPUConfig c = RPUConfig::from_json(*j);
    c.validate();
    return c;
  } catch (const ConfigError& e) {
    throw ConfigError("RPU config file " + path + ": " + e.what());
  }
}

}  // namespace

RPUConfig make_rpu_config_preset(const std::string& name) {
  if (name == "StandardHWATrainingPreset") return standard_hwa_training_preset();
  if (name == "FloatingPointPreset") return floating_point_preset();
  for (const auto& [preset, device] : single_device_presets())
    if (name == preset) return single_device_preset(device);
  for (const auto& n : compound_rpu_config_presets())
    if (n == name) return make_compound_rpu_config_preset(name);
  throw ConfigError("unknown RPU config preset \"" + name + "\"; presets: " +
                    join(rpu_config_presets()));
}

RPUConfig resolve_rpu_config(const std::string& spec) {
  std::error_code ec;
  const bool file = std::filesystem::is_regular_file(spec, ec);
  const bool json_name = spec.size() >= 5 && spec.compare(spec.size() - 5, 5, ".json") == 0;
  if (file || json_name) return read_rpu_config_file(spec);
  if (is_known(rpu_config_presets(), spec)) return make_rpu_config_preset(spec);
  if (is_known(rpu_config_families(), spec)) return RPUConfig::from_family(spec);
  // Something else of that name (a FIFO, a directory): say what it is.
  if (std::filesystem::exists(spec, ec)) return read_rpu_config_file(spec);
  throw ConfigError("unknown RPU config \"" + spec + "\": not a file, preset or family; presets: " +
                    join(rpu_config_presets()) + "; families: " + join(rpu_config_families()) +
                    "; or give a path to a .json file");
}

}  // namespace aimc
