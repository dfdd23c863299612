// PowStepDevice (aihwkit's): the step is a power of the distance to the
// bound it moves towards, with range = max_bound − min_bound:
//   up:   w += dwmin_up·((max_bound − w)/range)^gamma_up·(1 + dw_min_std·ξ)
//   down: w −= dwmin_down·((w − min_bound)/range)^gamma_down·(1 + dw_min_std·ξ)
// Per element (as the shared steps, with pow_gamma for dw_min):
//   gain = 1 + pow_gamma_dtod·ξ, r = pow_up_down_dtod·ξ,
//   gamma_up = (up_bias + gain + r)·pow_gamma, gamma_down = (down_bias + gain − r)·pow_gamma
// (up_bias = min(pow_up_down, 0), down_bias = −max(pow_up_down, 0); magnitudes
// with enforce_consistency). The schedule's step is dw_min·0.5^pow_gamma.
#include <cmath>

#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

struct PowStepParameter {
  float pow_gamma = 1.f;
  float pow_gamma_dtod = 0.1f;
  float pow_up_down = 0.f;
  float pow_up_down_dtod = 0.f;
};

class PowStepDevice : public PulsedDeviceModel {
 public:
  static constexpr const char* kType = "PowStepDevice";
  PowStepDevice(const PulsedDeviceParameter& p, const PowStepParameter& own) : own_(own) { common_ = p; }
  std::string base_type() const override { return kType; }
  analog::PulsedLawParams law() const override {
    analog::PulsedLawParams l;
    l.law = analog::PulsedLaw::PowStep;
    l.dw_min_std = common_.dw_min_std;
    return l;
  }
  std::vector<std::string> law_value_names() const override { return {"gamma_up", "gamma_down"}; }
  float granularity() const override { return common_.dw_min * std::pow(0.5f, own_.pow_gamma); }
  void draw_law_values(const ChipValues& v) const override {
    const float up_bias = own_.pow_up_down > 0.f ? 0.f : own_.pow_up_down;
    const float down_bias = own_.pow_up_down > 0.f ? -own_.pow_up_down : 0.f;
    for (std::int64_t k = 0; k < v.size; ++k) {
      const float gain = 1.f + own_.pow_gamma_dtod * v.xi[0][k];
      const float r = own_.pow_up_down_dtod * v.xi[1][k];
      float gu = (up_bias + gain + r) * own_.pow_gamma;
      float gd = (down_bias + gain - r) * own_.pow_gamma;
      if (common_.enforce_consistency) {
        gu = std::abs(gu);
        gd = std::abs(gd);
      }
      v.p0[k] = gu;
      v.p1[k] = gd;
    }
  }

 protected:
  nlohmann::json own_json() const override {
    using config::float_to_json;
    return {{"type", kType},
            {"pow_gamma", float_to_json(own_.pow_gamma)},
            {"pow_gamma_dtod", float_to_json(own_.pow_gamma_dtod)},
            {"pow_up_down", float_to_json(own_.pow_up_down)},
            {"pow_up_down_dtod", float_to_json(own_.pow_up_down_dtod)}};
  }

 private:
  PowStepParameter own_;
};

}  // namespace

std::shared_ptr<const DeviceModel> make_pow_step_device(const nlohmann::json& j, const std::string& where) {
  PulsedDeviceParameter p;
  PowStepParameter own;
  config::ObjectReader r(j, where);
  r.find("type");
  p.read(r);
  r.read("pow_gamma", own.pow_gamma);
  r.read("pow_gamma_dtod", own.pow_gamma_dtod);
  r.read("pow_up_down", own.pow_up_down);
  r.read("pow_up_down_dtod", own.pow_up_down_dtod);
  r.finish();
  p.validate(where);
  const config::RangeCheck c(where);
  c.at_least("pow_gamma", own.pow_gamma, 0.0);
  c.at_least("pow_gamma_dtod", own.pow_gamma_dtod, 0.0);
  c.finite("pow_up_down", own.pow_up_down);
  c.at_least("pow_up_down_dtod", own.pow_up_down_dtod, 0.0);
  return std::make_shared<PowStepDevice>(p, own);
}

}  // namespace aimc
