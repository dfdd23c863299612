// IOParameters <-> JSON and validation (field names as aihwkit's IOParameters).
#include "layers/config/io_parameters_json.h"

#include <array>

#include "engine/error.h"
#include "layers/config/json_fields.h"

namespace aimc {

namespace {

using config::EnumName;

constexpr std::array<EnumName<NoiseManagementType>, 6> kNoiseManagement{{
    {NoiseManagementType::None, "NONE", "None"},
    {NoiseManagementType::AbsMax, "ABS_MAX", "AbsMax"},
    {NoiseManagementType::AbsMaxNPSum, "ABS_MAX_NP_SUM", "AbsMaxNPSum"},
    {NoiseManagementType::Max, "MAX", "Max"},
    {NoiseManagementType::Constant, "CONSTANT", "Constant"},
    {NoiseManagementType::AverageAbsMax, "AVERAGE_ABS_MAX", "AverageAbsMax"},
}};

constexpr std::array<EnumName<BoundManagementType>, 4> kBoundManagement{{
    {BoundManagementType::None, "NONE", "None"},
    {BoundManagementType::Iterative, "ITERATIVE", "Iterative"},
    {BoundManagementType::IterativeWorstCase, "ITERATIVE_WORST_CASE", "IterativeWorstCase"},
    {BoundManagementType::Shift, "SHIFT", "Shift"},
}};

constexpr std::array<EnumName<WeightNoiseType>, 3> kWeightNoise{{
    {WeightNoiseType::None, "NONE", "None"},
    {WeightNoiseType::AdditiveConstant, "ADDITIVE_CONSTANT", "AdditiveConstant"},
    {WeightNoiseType::PCMRead, "PCM_READ", "PCMRead"},
}};

constexpr std::array<EnumName<AnalogMVType>, 3> kMVType{{
    {AnalogMVType::OnePass, "ONE_PASS", "OnePass"},
    {AnalogMVType::PosNegSeparate, "POS_NEG_SEPARATE", "PosNegSeparate"},
    {AnalogMVType::PosNegSeparateDigitalSum, "POS_NEG_SEPARATE_DIGITAL_SUM",
     "PosNegSeparateDigitalSum"},
}};

template <class E, std::size_t N>
std::span<const EnumName<E>> table(const std::array<EnumName<E>, N>& a) {
  return std::span<const EnumName<E>>(a.data(), a.size());
}

}  // namespace

const char* to_string(NoiseManagementType value) {
  return config::enum_to_name(value, table(kNoiseManagement));
}
const char* to_string(BoundManagementType value) {
  return config::enum_to_name(value, table(kBoundManagement));
}
const char* to_string(WeightNoiseType value) {
  return config::enum_to_name(value, table(kWeightNoise));
}
const char* to_string(AnalogMVType value) { return config::enum_to_name(value, table(kMVType)); }

nlohmann::json to_json(const IOParameters& io) {
  using config::float_to_json;
  nlohmann::json j;
  j["is_perfect"] = io.is_perfect;
  j["mv_type"] = to_string(io.mv_type);
  j["inp_bound"] = float_to_json(io.inp_bound);
  j["inp_res"] = float_to_json(io.inp_res);
  j["inp_sto_round"] = io.inp_sto_round;
  j["inp_noise"] = float_to_json(io.inp_noise);
  j["inp_asymmetry"] = float_to_json(io.inp_asymmetry);
  j["out_bound"] = float_to_json(io.out_bound);
  j["out_res"] = float_to_json(io.out_res);
  j["out_sto_round"] = io.out_sto_round;
  j["out_noise"] = float_to_json(io.out_noise);
  j["out_noise_std"] = float_to_json(io.out_noise_std);
  j["out_asymmetry"] = float_to_json(io.out_asymmetry);
  j["out_nonlinearity"] = float_to_json(io.out_nonlinearity);
  j["out_nonlinearity_std"] = float_to_json(io.out_nonlinearity_std);
  j["out_scale"] = float_to_json(io.out_scale);
  j["slope_calibration"] = float_to_json(io.slope_calibration);
  j["v_offset_std"] = float_to_json(io.v_offset_std);
  j["v_offset_w_min"] = float_to_json(io.v_offset_w_min);
  j["r_series"] = float_to_json(io.r_series);
  j["w_read_asymmetry_dtod"] = float_to_json(io.w_read_asymmetry_dtod);
  j["bound_management"] = to_string(io.bound_management);
  j["noise_management"] = to_string(io.noise_management);
  j["nm_thres"] = float_to_json(io.nm_thres);
  j["w_noise"] = float_to_json(io.w_noise);
  j["w_noise_type"] = to_string(io.w_noise_type);
  j["ir_drop"] = float_to_json(io.ir_drop);
  j["ir_drop_g_ratio"] = float_to_json(io.ir_drop_g_ratio);
  j["max_bm_factor"] = float_to_json(io.max_bm_factor);
  j["max_bm_res"] = float_to_json(io.max_bm_res);
  j["bm_test_negative_bound"] = io.bm_test_negative_bound;
  return j;
}

IOParameters io_parameters_from_json(const nlohmann::json& j, const std::string& where) {
  IOParameters io;
  config::ObjectReader r(j, where);
  r.read("is_perfect", io.is_perfect);
  r.read_enum("mv_type", io.mv_type, table(kMVType));
  r.read("inp_bound", io.inp_bound);
  r.read_resolution("inp_res", io.inp_res);
  r.read("inp_sto_round", io.inp_sto_round);
  r.read("inp_noise", io.inp_noise);
  r.read("inp_asymmetry", io.inp_asymmetry);
  r.read("out_bound", io.out_bound);
  r.read_resolution("out_res", io.out_res);
  r.read("out_sto_round", io.out_sto_round);
  r.read("out_noise", io.out_noise);
  r.read("out_noise_std", io.out_noise_std);
  r.read("out_asymmetry", io.out_asymmetry);
  r.read("out_nonlinearity", io.out_nonlinearity);
  r.read("out_nonlinearity_std", io.out_nonlinearity_std);
  r.read("out_scale", io.out_scale);
  r.read("slope_calibration", io.slope_calibration);
  r.read("v_offset_std", io.v_offset_std);
  r.read("v_offset_w_min", io.v_offset_w_min);
  r.read("r_series", io.r_series);
  r.read("w_read_asymmetry_dtod", io.w_read_asymmetry_dtod);
  r.read_enum("bound_management", io.bound_management, table(kBoundManagement));
  r.read_enum("noise_management", io.noise_management, table(kNoiseManagement));
  r.read("nm_thres", io.nm_thres);
  r.read("w_noise", io.w_noise);
  r.read_enum("w_noise_type", io.w_noise_type, table(kWeightNoise));
  r.read("ir_drop", io.ir_drop);
  r.read("ir_drop_g_ratio", io.ir_drop_g_ratio);
  r.read("max_bm_factor", io.max_bm_factor);
  r.read("max_bm_res", io.max_bm_res);
  r.read("bm_test_negative_bound", io.bm_test_negative_bound);
  r.finish();
  validate(io, where);
  return io;
}

void validate(const IOParameters& io, const std::string& prefix) {
  const config::RangeCheck c(prefix);
  c.greater("inp_bound", io.inp_bound, 0.0);
  if (io.noise_management != NoiseManagementType::None && io.inp_bound != 1.0f) {
    c.fail("inp_bound", config::format_number(io.inp_bound),
           std::string("1 when noise_management is on (noise_management = ") +
               to_string(io.noise_management) + ")");
  }
  c.resolution("inp_res", io.inp_res);
  c.at_least("inp_noise", io.inp_noise, 0.0);
  c.in_closed("inp_asymmetry", io.inp_asymmetry, -1.0, 1.0);
  c.finite("out_bound", io.out_bound);
  c.resolution("out_res", io.out_res);
  if (io.out_bound <= 0.0f && io.out_res > 0.0f) {
    c.fail("out_res", config::format_number(io.out_res),
           "<= 0 (off) when out_bound <= 0 (no output bound, so no ADC range to quantise)");
  }
  c.at_least("out_noise", io.out_noise, 0.0);
  c.at_least("out_noise_std", io.out_noise_std, 0.0);
  c.in_closed("out_asymmetry", io.out_asymmetry, -1.0, 1.0);
  c.at_least("out_nonlinearity", io.out_nonlinearity, 0.0);
  c.at_least("out_nonlinearity_std", io.out_nonlinearity_std, 0.0);
  c.finite("out_scale", io.out_scale);
  c.at_least("slope_calibration", io.slope_calibration, 0.0);
  c.at_least("v_offset_std", io.v_offset_std, 0.0);
  c.finite("v_offset_w_min", io.v_offset_w_min);
  c.at_least("r_series", io.r_series, 0.0);
  c.at_least("w_read_asymmetry_dtod", io.w_read_asymmetry_dtod, 0.0);
  c.at_least("nm_thres", io.nm_thres, 0.0);
  c.at_least("w_noise", io.w_noise, 0.0);
  c.at_least("ir_drop", io.ir_drop, 0.0);
  c.greater("ir_drop_g_ratio", io.ir_drop_g_ratio, 0.0);
  c.at_least("max_bm_factor", io.max_bm_factor, 1.0);
  c.greater("max_bm_res", io.max_bm_res, 0.0);
}

}  // namespace aimc
