// WeightModifierParameter validation and JSON round trip.
#include "layers/config/weight_modifier.h"

#include <array>

#include "layers/config/json_fields.h"

namespace aimc {

namespace {

using T = WeightModifierType;

constexpr std::array<config::EnumName<T>, 14> kModifierTypes{{
    {T::None, "NONE", "None"},
    {T::Discretize, "DISCRETIZE", "Discretize"},
    {T::DiscretizePerChannel, "DISCRETIZE_PER_CHANNEL", "DiscretizePerChannel"},
    {T::MultNormal, "MULT_NORMAL", "MultNormal"},
    {T::AddNormal, "ADD_NORMAL", "AddNormal"},
    {T::AddNormalPerChannel, "ADD_NORMAL_PER_CHANNEL", "AddNormalPerChannel"},
    {T::DiscretizeAddNormal, "DISCRETIZE_ADD_NORMAL", "DiscretizeAddNormal"},
    {T::DiscretizeAddNormalPerChannel, "DISCRETIZE_ADD_NORMAL_PER_CHANNEL",
     "DiscretizeAddNormalPerChannel"},
    {T::DoReFa, "DOREFA", "DoReFa"},
    {T::Poly, "POLY", "Poly"},
    {T::PCMNoise, "PCM_NOISE", "PCMNoise"},
    {T::ProgNoise, "PROG_NOISE", "ProgNoise"},
    {T::DropConnect, "DROP_CONNECT", "DropConnect"},
    {T::Copy, "COPY", "Copy"},
}};

std::span<const config::EnumName<T>> modifier_table() { return kModifierTypes; }

bool discretises(T type) {
  return type == T::Discretize || type == T::DiscretizePerChannel ||
         type == T::DiscretizeAddNormal || type == T::DiscretizeAddNormalPerChannel ||
         type == T::DoReFa;
}

}  // namespace

const char* to_string(WeightModifierType value) {
  return config::enum_to_name(value, modifier_table());
}

void WeightModifierParameter::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  c.at_least("std_dev", std_dev, 0.0);
  c.resolution("res", res);
  if (discretises(type) && !(res > 0.0f)) {
    c.fail("res", config::format_number(res),
           std::string("a resolution in (0, 1] when type is ") + to_string(type));
  }
  c.greater("dorefa_clip", dorefa_clip, 0.0);
  c.in_half_open("pdrop", pdrop, 0.0, 1.0);
  c.greater("assumed_wmax", assumed_wmax, 0.0);
  if (coeffs.empty()) c.fail("coeffs", "[]", "a non-empty list of finite numbers");
  for (float v : coeffs) c.finite("coeffs", v);
  c.greater("g_max", g_max, 0.0);
  c.at_least("pcm_zero_thres", pcm_zero_thres, 0.0);
  c.at_least("pcm_t_inference", pcm_t_inference, 0.0);
  c.in_closed("pcm_prob_at_reset", pcm_prob_at_reset, 0.0, 1.0);
  c.in_closed("pcm_prob_at_gmax", pcm_prob_at_gmax, 0.0, 1.0);
  c.in_closed("pcm_prob_at_random", pcm_prob_at_random, 0.0, 1.0);
  c.greater("pcm_t0", pcm_t0, 0.0);
}

nlohmann::json WeightModifierParameter::to_json() const {
  using config::float_to_json;
  nlohmann::json j;
  j["std_dev"] = float_to_json(std_dev);
  j["per_batch_sample"] = per_batch_sample;
  j["res"] = float_to_json(res);
  j["sto_round"] = sto_round;
  j["dorefa_clip"] = float_to_json(dorefa_clip);
  j["pdrop"] = float_to_json(pdrop);
  j["enable_during_test"] = enable_during_test;
  j["rel_to_actual_wmax"] = rel_to_actual_wmax;
  j["assumed_wmax"] = float_to_json(assumed_wmax);
  j["copy_last_column"] = copy_last_column;
  nlohmann::json cs = nlohmann::json::array();
  for (float v : coeffs) cs.push_back(float_to_json(v));
  j["coeffs"] = cs;
  j["type"] = to_string(type);
  j["g_max"] = float_to_json(g_max);
  j["pcm_zero_thres"] = float_to_json(pcm_zero_thres);
  j["pcm_t_inference"] = float_to_json(pcm_t_inference);
  j["pcm_prob_at_reset"] = float_to_json(pcm_prob_at_reset);
  j["pcm_prob_at_gmax"] = float_to_json(pcm_prob_at_gmax);
  j["pcm_prob_at_random"] = float_to_json(pcm_prob_at_random);
  j["pcm_t0"] = float_to_json(pcm_t0);
  return j;
}

WeightModifierParameter WeightModifierParameter::from_json(const nlohmann::json& j,
                                                           const std::string& where) {
  WeightModifierParameter p;
  config::ObjectReader r(j, where);
  r.read("std_dev", p.std_dev);
  r.read("per_batch_sample", p.per_batch_sample);
  r.read_resolution("res", p.res);
  r.read("sto_round", p.sto_round);
  r.read("dorefa_clip", p.dorefa_clip);
  r.read("pdrop", p.pdrop);
  r.read("enable_during_test", p.enable_during_test);
  r.read("rel_to_actual_wmax", p.rel_to_actual_wmax);
  r.read("assumed_wmax", p.assumed_wmax);
  r.read("copy_last_column", p.copy_last_column);
  r.read("coeffs", p.coeffs);
  r.read_enum("type", p.type, modifier_table());
  r.read("g_max", p.g_max);
  r.read("pcm_zero_thres", p.pcm_zero_thres);
  r.read("pcm_t_inference", p.pcm_t_inference);
  r.read("pcm_prob_at_reset", p.pcm_prob_at_reset);
  r.read("pcm_prob_at_gmax", p.pcm_prob_at_gmax);
  r.read("pcm_prob_at_random", p.pcm_prob_at_random);
  r.read("pcm_t0", p.pcm_t0);
  r.finish();
  p.validate(where);
  return p;
}

}  // namespace aimc
