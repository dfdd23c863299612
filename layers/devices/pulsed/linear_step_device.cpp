// LinearStepDevice (aihwkit's) and the law it shares with SoftBounds (see linear_step.h).
#include <cmath>

#include "layers/devices/pulsed/linear_step.h"

namespace aimc {

void LinearStepParameter::read(config::ObjectReader& r, bool soft_bounds) {
  if (!soft_bounds) {
    r.read("gamma_up", gamma_up);
    r.read("gamma_down", gamma_down);
    r.read("gamma_up_dtod", gamma_up_dtod);
    r.read("gamma_down_dtod", gamma_down_dtod);
    r.read("allow_increasing", allow_increasing);
    r.read("mean_bound_reference", mean_bound_reference);
  }
  r.read("mult_noise", mult_noise);
  r.read("reverse_up", reverse_up);
  r.read("reverse_down", reverse_down);
  r.read("reverse_offset", reverse_offset);
}

void LinearStepParameter::write(nlohmann::json& j, bool soft_bounds) const {
  using config::float_to_json;
  if (!soft_bounds) {
    j["gamma_up"] = float_to_json(gamma_up);
    j["gamma_down"] = float_to_json(gamma_down);
    j["gamma_up_dtod"] = float_to_json(gamma_up_dtod);
    j["gamma_down_dtod"] = float_to_json(gamma_down_dtod);
    j["allow_increasing"] = allow_increasing;
    j["mean_bound_reference"] = mean_bound_reference;
  }
  j["mult_noise"] = mult_noise;
  j["reverse_up"] = reverse_up;
  j["reverse_down"] = reverse_down;
  j["reverse_offset"] = float_to_json(reverse_offset);
}

void LinearStepParameter::validate(const std::string& where) const {
  const config::RangeCheck c(where);
  c.finite("gamma_up", gamma_up);
  c.finite("gamma_down", gamma_down);
  c.at_least("gamma_up_dtod", gamma_up_dtod, 0.0);
  c.at_least("gamma_down_dtod", gamma_down_dtod, 0.0);
  c.finite("reverse_offset", reverse_offset);
  if ((reverse_up || reverse_down) && !mult_noise)
    c.fail("mult_noise", "false", "true when reverse_up or reverse_down is set (aihwkit's restriction)");
}

void LinearStepParameter::make_soft_bounds() {
  gamma_up = gamma_down = 1.f;
  gamma_up_dtod = gamma_down_dtod = 0.f;
  allow_increasing = false;
  mean_bound_reference = false;
}

analog::PulsedLawParams LinearStepModel::law() const {
  analog::PulsedLawParams l;
  l.law = soft_bounds_ ? analog::PulsedLaw::SoftBounds : analog::PulsedLaw::LinearStep;
  l.dw_min_std = common_.dw_min_std;
  l.mult_noise = ls_.mult_noise;
  return l;
}

void LinearStepModel::draw_law_values(const ChipValues& v) const {
  const PulsedDeviceParameter& p = common_;
  for (std::int64_t k = 0; k < v.size; ++k) {
    float gu = ls_.gamma_up + ls_.gamma_up_dtod * v.xi[0][k];
    float gd = ls_.gamma_down + ls_.gamma_down_dtod * v.xi[1][k];
    if (!ls_.allow_increasing) {
      gu = std::abs(gu);
      gd = std::abs(gd);
    }
    const float hi = ls_.mean_bound_reference ? p.w_max : v.max_bound[k];
    const float lo = ls_.mean_bound_reference ? p.w_min : v.min_bound[k];
    const float ref_up = ls_.reverse_up ? lo - ls_.reverse_offset : hi;
    const float ref_down = ls_.reverse_down ? hi + ls_.reverse_offset : lo;
    v.p0[k] = ref_up != 0.f ? -gu * v.up[k] / ref_up : 0.f;
    v.p1[k] = ref_down != 0.f ? -gd * v.down[k] / ref_down : 0.f;
  }
}

nlohmann::json LinearStepModel::own_json() const {
  nlohmann::json j{{"type", type_}};
  ls_.write(j, soft_bounds_);
  return j;
}

std::shared_ptr<const DeviceModel> make_linear_step_device(const nlohmann::json& j, const std::string& where) {
  PulsedDeviceParameter p;
  LinearStepParameter ls;
  config::ObjectReader r(j, where);
  r.find("type");
  p.read(r);
  ls.read(r, false);
  r.finish();
  p.validate(where);
  ls.validate(where);
  return std::make_shared<LinearStepModel>("LinearStepDevice", false, p, ls);
}

}  // namespace aimc
