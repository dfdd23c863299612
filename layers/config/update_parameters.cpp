// UpdateParameters validation and JSON round trip.
#include "layers/config/update_parameters.h"

#include <array>

#include "layers/config/json_fields.h"

namespace aimc {
namespace {

constexpr std::array<config::EnumName<PulseType>, 5> kPulseTypes{{
    {PulseType::None, "NONE", "None"},
    {PulseType::StochasticCompressed, "STOCHASTIC_COMPRESSED", "StochasticCompressed"},
    {PulseType::Stochastic, "STOCHASTIC", "Stochastic"},
    {PulseType::DeterministicImplicit, "DETERMINISTIC_IMPLICIT", "DeterministicImplicit"},
    {PulseType::MeanCount, "MEAN_COUNT", "MeanCount"},
}};

}  // namespace

const char* to_string(PulseType value) { return config::enum_to_name<PulseType>(value, kPulseTypes); }

analog::UpdatePulseParams UpdateParameters::kernel_params() const {
  analog::UpdatePulseParams p;
  p.pulse_type = pulse_type;
  p.desired_bl = desired_bl;
  p.fixed_bl = fixed_bl;
  p.update_bl_management = update_bl_management;
  p.update_management = update_management;
  p.um_grad_scale = um_grad_scale;
  p.res = res;
  p.x_res_implicit = x_res_implicit;
  p.d_res_implicit = d_res_implicit;
  return p;
}

void UpdateParameters::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  c.in_closed("desired_bl", desired_bl, 1, 32 * analog::kMaxPulseWords);
  c.resolution("res", res);
  c.resolution("x_res_implicit", x_res_implicit);
  c.resolution("d_res_implicit", d_res_implicit);
  c.greater("um_grad_scale", um_grad_scale, 0.0);
  c.finite("um_grad_scale", um_grad_scale);
  if (sto_round) c.fail("sto_round", "true", "false (stochastic rounding of the probabilities is not implemented)");
}

nlohmann::json UpdateParameters::to_json() const {
  nlohmann::json j;
  j["d_res_implicit"] = config::float_to_json(d_res_implicit);
  j["d_sparsity"] = d_sparsity;
  j["desired_bl"] = desired_bl;
  j["fixed_bl"] = fixed_bl;
  j["pulse_type"] = to_string(pulse_type);
  j["res"] = config::float_to_json(res);
  j["sto_round"] = sto_round;
  j["um_grad_scale"] = config::float_to_json(um_grad_scale);
  j["update_bl_management"] = update_bl_management;
  j["update_management"] = update_management;
  j["x_res_implicit"] = config::float_to_json(x_res_implicit);
  return j;
}

UpdateParameters UpdateParameters::from_json(const nlohmann::json& j, const std::string& where) {
  UpdateParameters p;
  config::ObjectReader r(j, where);
  r.read_resolution("d_res_implicit", p.d_res_implicit);
  r.read("d_sparsity", p.d_sparsity);
  r.read("desired_bl", p.desired_bl);
  r.read("fixed_bl", p.fixed_bl);
  r.read_enum("pulse_type", p.pulse_type, std::span<const config::EnumName<PulseType>>(kPulseTypes));
  r.read_resolution("res", p.res);
  r.read("sto_round", p.sto_round);
  r.read("um_grad_scale", p.um_grad_scale);
  r.read("update_bl_management", p.update_bl_management);
  r.read("update_management", p.update_management);
  r.read_resolution("x_res_implicit", p.x_res_implicit);
  r.finish();
  p.validate(where);
  return p;
}

}  // namespace aimc
