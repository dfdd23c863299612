// The parts of TorchInferenceRPUConfig that follow aihwkit-lightning 2.1 rather
// than aihwkit: lightning's IOParameters (five fields, all off by default),
// its mapping and clip defaults, and the subset of aihwkit's modifier / clip
// fields and types that lightning has. The rules for fields that only aihwkit
// has are in lightning_config.cpp (reject_foreign_fields).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/config/mapping.h"
#include "layers/config/pre_post.h"
#include "layers/config/weight_clip.h"
#include "layers/config/weight_modifier.h"

namespace aimc {

// aihwkit-lightning's IOParameters, with its defaults: every nonideality off.
// Resolutions as aimc's IOParameters: <= 0 off, in (0, 1] a step in units of
// the full range; JSON values > 1 are a number of steps (stored as 1/steps).
struct LightningIOParameters {
  // DAC resolution (needs pre_post.input_range.enable when > 0).
  float inp_res = -1.0f;
  // Output noise std in units of wmax·r (training only; needs an input range).
  float out_noise = 0.0f;
  // Output noise with wmax per output row instead of the tile's max|W|.
  bool out_noise_per_channel = false;
  // ADC bound in units of wmax·r (<= 0: no bound; > 0 needs an input range).
  float out_bound = 0.0f;
  // ADC resolution relative to 2·bound (> 0 needs out_bound > 0 and an input range).
  float out_res = -1.0f;

  // Throws ConfigError naming where.field: finite values, resolutions <= 0 or
  // in (0, 1], out_noise >= 0, out_res > 0 only with out_bound > 0.
  void validate(const std::string& where = "LightningIOParameters") const;
  nlohmann::json to_json() const;
  // Missing fields keep lightning's defaults. Any other field, among them
  // those of aihwkit's IOParameters that lightning lacks (w_noise,
  // noise_management, ...: aihwkit's defaults of some, such as
  // noise_management ABS_MAX, mean "on"), is rejected with a ConfigError
  // naming it and lightning's fields.
  static LightningIOParameters from_json(const nlohmann::json& j,
                                         const std::string& where = "LightningIOParameters");
  // The JSON fields above.
  static const std::vector<std::string>& fields();
};

// Lightning's MappingParameter defaults: max_input_size -1 (no split). Lightning
// has no max_output_size; aimc keeps it as an option, off (-1) by default.
MappingParameter lightning_mapping_defaults();
// Lightning's WeightClipParameter defaults: type NONE, sigma -1 (it must be
// set > 0 for the LAYER_GAUSSIAN types).
WeightClipParameter lightning_clip_defaults();

// The rules of this family for fields aimc shares with aihwkit (where =
// "TorchInferenceRPUConfig.mapping" etc.): max sizes >= -1 (-1 and 0 = no
// split); clip types NONE, LAYER_GAUSSIAN(_PER_CHANNEL), fixed_value at its
// default; modifier types NONE, DISCRETIZE, ADD_NORMAL and their
// *_PER_CHANNEL / DISCRETIZE_ADD_NORMAL combinations, every field lightning
// lacks (pdrop, rel_to_actual_wmax, ...) at aihwkit's default.
void validate_lightning_mapping(const MappingParameter& m, const std::string& where);
void validate_lightning_clip(const WeightClipParameter& p, const std::string& where);
void validate_lightning_modifier(const WeightModifierParameter& p, const std::string& where);
// pre_post.input_range: the fields lightning lacks (manage_output_clipping,
// output_min_percentage, gradient_scale, gradient_relative, calibration_info)
// at aihwkit's defaults.
void validate_lightning_pre_post(const PrePostProcessingParameter& p, const std::string& where);

// Readers of the family's JSON: missing fields take lightning's defaults,
// then the validate_lightning_* rules apply. The modifier also takes
// lightning 2's noise_type (NONE, ADD_NORMAL, ADD_NORMAL_PER_CHANNEL) and
// quantization_type (NONE, DISCRETIZE, DISCRETIZE_PER_CHANNEL), combined into
// type (both per channel or neither); type itself is lightning's < 2 spelling.
MappingParameter read_lightning_mapping(const nlohmann::json& j, const std::string& where);
WeightClipParameter read_lightning_clip(const nlohmann::json& j, const std::string& where);
WeightModifierParameter read_lightning_modifier(const nlohmann::json& j, const std::string& where);
// Also takes lightning's input_range.fast_mode, dynamic (false) and
// act_range_momentum (0.95) at those defaults; other values are rejected
// (not implemented in aimc).
PrePostProcessingParameter read_lightning_pre_post(const nlohmann::json& j, const std::string& where);

// The fields lightning has, as it writes them (clip: sigma, type; modifier:
// std_dev, res, enable_during_test, type).
nlohmann::json lightning_clip_json(const WeightClipParameter& p);
nlohmann::json lightning_modifier_json(const WeightModifierParameter& p);

}  // namespace aimc
