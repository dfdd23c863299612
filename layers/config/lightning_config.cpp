// aihwkit-lightning's parameters of TorchInferenceRPUConfig (see lightning_config.h).
#include "layers/config/lightning_config.h"

#include <algorithm>
#include <array>
#include <string_view>

#include "engine/error.h"
#include "kernels/analog/io_parameters.h"
#include "layers/config/io_parameters_json.h"
#include "layers/config/json_fields.h"

namespace aimc {
namespace {

constexpr int kNoSplit = -1;  // lightning's "no maximum" max_input_size

constexpr std::array<std::string_view, 5> kLightningIOFields{"inp_res", "out_noise", "out_noise_per_channel",
                                                             "out_bound", "out_res"};
constexpr std::array<std::string_view, 4> kLightningModifierFields{"std_dev", "res", "enable_during_test", "type"};
constexpr std::array<std::string_view, 2> kLightningClipFields{"sigma", "type"};
// Lightning's InputRangeParameter fields that aimc also has (it adds
// fast_mode, act_range_momentum and dynamic, see read_lightning_pre_post).
constexpr std::array<std::string_view, 7> kLightningInputRangeFields{
    "enable", "learn_input_range", "init_value", "init_from_data", "init_std_alpha", "decay", "input_min_percentage"};

template <std::size_t N>
bool is_one_of(std::string_view key, const std::array<std::string_view, N>& keys) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

template <std::size_t N>
std::string field_list(const std::array<std::string_view, N>& keys) {
  std::string out;
  for (std::string_view k : keys) out += (out.empty() ? "" : ", ") + std::string(k);
  return out;
}

// Every field of `value` (a full to_json of an aimc struct) that lightning's
// class lacks must equal aihwkit's default (the same key of `defaults`).
// Why the default is accepted rather than every mention rejected: aimc wrote
// every aihwkit field into the TorchInferenceRPUConfig JSON of earlier saved
// models and a config exported from aihwkit names them all, at their defaults
// unless the user chose otherwise; a value at the default asks for nothing the
// lightning forward does not do, while any other value is a request it cannot
// honour and is rejected, naming the field.
template <std::size_t N>
void reject_foreign_fields(const nlohmann::json& value, const nlohmann::json& defaults,
                           const std::array<std::string_view, N>& lightning_fields, const std::string& where,
                           const char* lightning_class) {
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (is_one_of(it.key(), lightning_fields) || !defaults.contains(it.key())) continue;
    if (it.value() == defaults[it.key()]) continue;
    throw ConfigError(where + "." + it.key() + " = " + it.value().dump() + " is not supported: aihwkit-lightning's " +
                      lightning_class + " has no field " + it.key() + " (it has " + field_list(lightning_fields) +
                      "); remove it or use aihwkit's default " + defaults[it.key()].dump());
  }
}

}  // namespace

// ---- LightningIOParameters ----

void LightningIOParameters::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  c.resolution("inp_res", inp_res);
  c.at_least("out_noise", out_noise, 0.0);
  c.finite("out_bound", out_bound);
  c.resolution("out_res", out_res);
  if (out_res > 0.0f && !(out_bound > 0.0f))
    c.fail("out_res", config::format_number(out_res),
           "<= 0 (off) when out_bound <= 0 (lightning: \"Out quant. without a bound\")");
}

nlohmann::json LightningIOParameters::to_json() const {
  using config::float_to_json;
  return nlohmann::json{{"inp_res", float_to_json(inp_res)},
                        {"out_noise", float_to_json(out_noise)},
                        {"out_noise_per_channel", out_noise_per_channel},
                        {"out_bound", float_to_json(out_bound)},
                        {"out_res", float_to_json(out_res)}};
}

LightningIOParameters LightningIOParameters::from_json(const nlohmann::json& j, const std::string& where) {
  LightningIOParameters io;
  config::ObjectReader r(j, where);
  r.read_resolution("inp_res", io.inp_res);
  r.read("out_noise", io.out_noise);
  r.read("out_noise_per_channel", io.out_noise_per_channel);
  r.read("out_bound", io.out_bound);
  r.read_resolution("out_res", io.out_res);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (is_one_of(it.key(), kLightningIOFields)) continue;
    const bool aihwkit_field = aimc::to_json(IOParameters{}).contains(it.key());
    throw ConfigError(where + "." + it.key() + " is not supported: " +
                      (aihwkit_field ? "it is a field of aihwkit's IOParameters, which " : "") +
                      "aihwkit-lightning's IOParameters does not have (it has " + field_list(kLightningIOFields) +
                      "); remove it");
  }
  r.finish();
  io.validate(where);
  return io;
}

const std::vector<std::string>& LightningIOParameters::fields() {
  static const std::vector<std::string> names(kLightningIOFields.begin(), kLightningIOFields.end());
  return names;
}

// ---- mapping, clip, modifier ----

MappingParameter lightning_mapping_defaults() {
  MappingParameter m;
  m.max_input_size = -1;
  m.max_output_size = -1;
  return m;
}

WeightClipParameter lightning_clip_defaults() {
  WeightClipParameter p;
  p.sigma = -1.0f;
  return p;
}

void validate_lightning_mapping(const MappingParameter& m, const std::string& where) {
  m.validate(where, kNoSplit);
}

void validate_lightning_clip(const WeightClipParameter& p, const std::string& where) {
  p.validate(where);
  const config::RangeCheck c(where);
  if (p.type != WeightClipType::None && p.type != WeightClipType::LayerGaussian &&
      p.type != WeightClipType::LayerGaussianPerChannel)
    c.fail("type", to_string(p.type), "NONE, LAYER_GAUSSIAN or LAYER_GAUSSIAN_PER_CHANNEL (aihwkit-lightning's types)");
  reject_foreign_fields(p.to_json(), WeightClipParameter{}.to_json(), kLightningClipFields, where,
                        "WeightClipParameter");
}

void validate_lightning_modifier(const WeightModifierParameter& p, const std::string& where) {
  p.validate(where);
  using T = WeightModifierType;
  const config::RangeCheck c(where);
  switch (p.type) {
    case T::None:
    case T::Discretize:
    case T::DiscretizePerChannel:
    case T::AddNormal:
    case T::AddNormalPerChannel:
    case T::DiscretizeAddNormal:
    case T::DiscretizeAddNormalPerChannel:
      break;
    default:
      c.fail("type", to_string(p.type),
             "NONE, DISCRETIZE, ADD_NORMAL, DISCRETIZE_ADD_NORMAL or their *_PER_CHANNEL variants "
             "(aihwkit-lightning's types)");
  }
  reject_foreign_fields(p.to_json(), WeightModifierParameter{}.to_json(), kLightningModifierFields, where,
                        "WeightModifierParameter");
}

MappingParameter read_lightning_mapping(const nlohmann::json& j, const std::string& where) {
  return MappingParameter::from_json(j, where, lightning_mapping_defaults(), kNoSplit);
}

WeightClipParameter read_lightning_clip(const nlohmann::json& j, const std::string& where) {
  // Missing fields take lightning's defaults (sigma -1), then aimc's reader.
  nlohmann::json full = lightning_clip_defaults().to_json();
  if (j.is_object()) full.update(j);
  WeightClipParameter p = WeightClipParameter::from_json(j.is_object() ? full : j, where);
  validate_lightning_clip(p, where);
  return p;
}

namespace {

using T = WeightModifierType;
// Lightning 2's WeightNoiseInjectionType and WeightQuantizationType, as the
// aimc modifier type each stands for alone.
constexpr std::array<config::EnumName<T>, 3> kNoiseTypes{{
    {T::None, "NONE", "None"},
    {T::AddNormal, "ADD_NORMAL", "AddNormal"},
    {T::AddNormalPerChannel, "ADD_NORMAL_PER_CHANNEL", "AddNormalPerChannel"},
}};
constexpr std::array<config::EnumName<T>, 3> kQuantizationTypes{{
    {T::None, "NONE", "None"},
    {T::Discretize, "DISCRETIZE", "Discretize"},
    {T::DiscretizePerChannel, "DISCRETIZE_PER_CHANNEL", "DiscretizePerChannel"},
}};

// The aimc type of a (noise_type, quantization_type) pair; aimc has no type
// for per-channel noise with per-tensor quantisation or the reverse.
T combined_type(T noise, T quant, const std::string& where) {
  if (quant == T::None) return noise;
  if (noise == T::None) return quant;
  if (noise == T::AddNormal && quant == T::Discretize) return T::DiscretizeAddNormal;
  if (noise == T::AddNormalPerChannel && quant == T::DiscretizePerChannel) return T::DiscretizeAddNormalPerChannel;
  throw ConfigError(where + ".noise_type = " + to_string(noise) + " with quantization_type = " + to_string(quant) +
                    " is not supported: use both per channel or neither");
}

}  // namespace

WeightModifierParameter read_lightning_modifier(const nlohmann::json& j, const std::string& where) {
  // Lightning 2 writes noise_type and quantization_type (type is its
  // deprecated < 2 spelling); aimc keeps one type, so they are combined here.
  nlohmann::json rest = j;
  T noise = T::None, quant = T::None;
  if (j.is_object()) {
    config::ObjectReader r(j, where);  // only these two keys; the rest is read below
    r.read_enum("noise_type", noise, std::span<const config::EnumName<T>>(kNoiseTypes));
    r.read_enum("quantization_type", quant, std::span<const config::EnumName<T>>(kQuantizationTypes));
    rest.erase("noise_type");
    rest.erase("quantization_type");
  }
  WeightModifierParameter p = WeightModifierParameter::from_json(rest, where);
  if (noise != T::None || quant != T::None) {
    if (p.type != T::None)
      throw ConfigError(where + ".type = " + to_string(p.type) +
                        " together with noise_type / quantization_type: give one of the two spellings");
    p.type = combined_type(noise, quant, where);
  }
  validate_lightning_modifier(p, where);
  return p;
}

void validate_lightning_pre_post(const PrePostProcessingParameter& p, const std::string& where) {
  p.validate(where);
  reject_foreign_fields(p.input_range.to_json(), InputRangeParameter{}.to_json(), kLightningInputRangeFields,
                        where + ".input_range", "InputRangeParameter");
}

PrePostProcessingParameter read_lightning_pre_post(const nlohmann::json& j, const std::string& where) {
  nlohmann::json rest = j;
  if (j.is_object() && j.contains("input_range") && j["input_range"].is_object()) {
    // Lightning's own input-range modes, accepted at its defaults only (aimc
    // runs the learned, non-dynamic input range).
    const std::string ir_where = where + ".input_range";
    nlohmann::json& ir = rest["input_range"];
    config::ObjectReader r(ir, ir_where);  // only these three keys; the rest is read below
    bool fast_mode = false, dynamic = false;
    float momentum = 0.95f;
    r.read("fast_mode", fast_mode);
    r.read("dynamic", dynamic);
    r.read("act_range_momentum", momentum);
    const config::RangeCheck c(ir_where);
    if (fast_mode) c.fail("fast_mode", "true", "false (lightning's fast mode is not implemented in aimc)");
    if (dynamic) c.fail("dynamic", "true", "false (lightning's dynamic input range is not implemented in aimc)");
    if (momentum != 0.95f)
      c.fail("act_range_momentum", config::format_number(momentum),
             "0.95, lightning's default (it is read only by the fast mode, not implemented in aimc)");
    ir.erase("fast_mode");
    ir.erase("dynamic");
    ir.erase("act_range_momentum");
  }
  PrePostProcessingParameter p = PrePostProcessingParameter::from_json(rest, where);
  validate_lightning_pre_post(p, where);
  return p;
}

nlohmann::json lightning_clip_json(const WeightClipParameter& p) {
  return nlohmann::json{{"sigma", config::float_to_json(p.sigma)}, {"type", to_string(p.type)}};
}

nlohmann::json lightning_modifier_json(const WeightModifierParameter& p) {
  return nlohmann::json{{"std_dev", config::float_to_json(p.std_dev)},
                        {"res", config::float_to_json(p.res)},
                        {"enable_during_test", p.enable_during_test},
                        {"type", to_string(p.type)}};
}

}  // namespace aimc
