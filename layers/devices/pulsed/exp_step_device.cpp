// ExpStepDevice (aihwkit's): the step depends exponentially on the weight.
// With z = 2·a·w/(max_bound − min_bound) + b,
//   up:   w += dwmin_up·max(1 − A_up·exp(gamma_up·z), 0)·(1 + dw_min_std·ξ)
//   down: w −= dwmin_down·max(1 − A_down·exp(−gamma_down·z), 0)·(1 + dw_min_std·ξ)
// With dw_min_std_add or dw_min_std_slope set, the noise of the signed
// change dw is instead dw_min_std·(|dw| + dw_min_std_add + dw_min_std_slope·|w|)·ξ.
// The law's values are the same for every element (no device-to-device spread).
#include <algorithm>
#include <cmath>

#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

struct ExpStepParameter {
  float A_up = 0.00081f;
  float A_down = 0.36833f;
  float gamma_up = 12.44625f;
  float gamma_down = 12.78785f;
  float a = 0.244f;
  float b = 0.2425f;
  float dw_min_std_add = 0.f;
  float dw_min_std_slope = 0.f;
};

class ExpStepDevice : public PulsedDeviceModel {
 public:
  static constexpr const char* kType = "ExpStepDevice";
  ExpStepDevice(const PulsedDeviceParameter& p, const ExpStepParameter& own) : own_(own) { common_ = p; }
  std::string base_type() const override { return kType; }
  analog::PulsedLawParams law() const override {
    analog::PulsedLawParams l;
    l.law = analog::PulsedLaw::ExpStep;
    l.dw_min_std = common_.dw_min_std;
    l.A_up = own_.A_up;
    l.A_down = own_.A_down;
    l.gamma_up = own_.gamma_up;
    l.gamma_down = own_.gamma_down;
    l.a = own_.a;
    l.b = own_.b;
    l.dw_min_std_add = own_.dw_min_std_add;
    l.dw_min_std_slope = own_.dw_min_std_slope;
    return l;
  }
  // aihwkit's: the mean down step at w = 0 (averaged with itself there), or
  // dw_min when that is 0.
  float granularity() const override {
    const PulsedDeviceParameter& p = common_;
    const float down_bias = p.up_down > 0.f ? -p.up_down : 0.f;
    const float scale_down = (1.f + down_bias) * p.dw_min;
    const float dw_down = scale_down * std::max(1.f - own_.A_down * std::exp(-own_.gamma_down * own_.b), 0.f);
    const float g = std::max(dw_down, 0.f);
    return g > 0.f ? g : p.dw_min;
  }

 protected:
  nlohmann::json own_json() const override {
    using config::float_to_json;
    return {{"type", kType},
            {"A_up", float_to_json(own_.A_up)},
            {"A_down", float_to_json(own_.A_down)},
            {"gamma_up", float_to_json(own_.gamma_up)},
            {"gamma_down", float_to_json(own_.gamma_down)},
            {"a", float_to_json(own_.a)},
            {"b", float_to_json(own_.b)},
            {"dw_min_std_add", float_to_json(own_.dw_min_std_add)},
            {"dw_min_std_slope", float_to_json(own_.dw_min_std_slope)}};
  }

 private:
  ExpStepParameter own_;
};

}  // namespace

std::shared_ptr<const DeviceModel> make_exp_step_device(const nlohmann::json& j, const std::string& where) {
  PulsedDeviceParameter p;
  ExpStepParameter own;
  config::ObjectReader r(j, where);
  r.find("type");
  p.read(r);
  r.read("A_up", own.A_up);
  r.read("A_down", own.A_down);
  r.read("gamma_up", own.gamma_up);
  r.read("gamma_down", own.gamma_down);
  r.read("a", own.a);
  r.read("b", own.b);
  r.read("dw_min_std_add", own.dw_min_std_add);
  r.read("dw_min_std_slope", own.dw_min_std_slope);
  r.finish();
  p.validate(where);
  const config::RangeCheck c(where);
  for (const auto& [name, v] : {std::pair{"A_up", own.A_up}, {"A_down", own.A_down}, {"gamma_up", own.gamma_up},
                                {"gamma_down", own.gamma_down}, {"a", own.a}, {"b", own.b}})
    c.finite(name, v);
  c.at_least("dw_min_std_add", own.dw_min_std_add, 0.0);
  c.at_least("dw_min_std_slope", own.dw_min_std_slope, 0.0);
  return std::make_shared<ExpStepDevice>(p, own);
}

}  // namespace aimc
