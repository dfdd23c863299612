// SoftBoundsReferenceDevice (aihwkit's): a soft-bounds device whose weight is
// read against a reference conductance, w = g − reference. A pulse moves g by
// dwmin_up·(1 − g/max_bound) up or dwmin_down·(1 − g/min_bound) down (times
// (1 + dw_min_std·ξ) with mult_noise, plus dw_min_std·ξ·dwmin otherwise) and
// g stays in [min_bound, max_bound]. Device to device, the slopes dwmin/bound
// get relative spreads slope_up_dtod / slope_down_dtod (which move the bounds
// to dwmin/slope), the reference is reference_mean + reference_std·ξ, and
// subtract_symmetry_point adds the point where up and down steps are equal,
// (su − sd)/(su/max_bound − sd/min_bound), to the reference and the reset bias.
#include <cmath>

#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

struct SoftBoundsReferenceParameter {
  bool mult_noise = false;
  float slope_up_dtod = 0.f;
  float slope_down_dtod = 0.f;
  float reference_mean = 0.f;
  float reference_std = 0.f;
  bool subtract_symmetry_point = false;
};

class SoftBoundsReferenceDevice : public PulsedDeviceModel {
 public:
  static constexpr const char* kType = "SoftBoundsReferenceDevice";
  SoftBoundsReferenceDevice(const PulsedDeviceParameter& p, const SoftBoundsReferenceParameter& own) : own_(own) {
    common_ = p;
  }
  std::string base_type() const override { return kType; }
  analog::PulsedLawParams law() const override {
    analog::PulsedLawParams l;
    l.law = analog::PulsedLaw::SoftBoundsReference;
    l.dw_min_std = common_.dw_min_std;
    l.mult_noise = own_.mult_noise;
    return l;
  }
  std::vector<std::string> law_value_names() const override { return {"reference"}; }
  void draw_law_values(const ChipValues& v) const override {
    for (std::int64_t k = 0; k < v.size; ++k) {
      const float su = v.up[k], sd = v.down[k];
      float& mx = v.max_bound[k];
      float& mn = v.min_bound[k];
      if (mx > 0.f && mn < 0.f) {
        const float slope_up = su / mx * std::abs(1.f + own_.slope_up_dtod * v.xi[0][k]);
        const float slope_down = -sd / mn * std::abs(1.f + own_.slope_down_dtod * v.xi[1][k]);
        if (slope_up > 0.f) mx = su / slope_up;
        if (slope_down > 0.f) mn = -sd / slope_down;
      }
      float ref = own_.reference_mean + own_.reference_std * v.xi[2][k];
      if (own_.subtract_symmetry_point && mx > 0.f && mn < 0.f) {
        const float den = su / mx - sd / mn;
        const float sp = den != 0.f ? (su - sd) / den : 0.f;
        ref += sp;
        v.reset_bias[k] += sp;
      }
      v.p0[k] = ref;
    }
  }

 protected:
  nlohmann::json own_json() const override {
    using config::float_to_json;
    return {{"type", kType},
            {"mult_noise", own_.mult_noise},
            {"slope_up_dtod", float_to_json(own_.slope_up_dtod)},
            {"slope_down_dtod", float_to_json(own_.slope_down_dtod)},
            {"reference_mean", float_to_json(own_.reference_mean)},
            {"reference_std", float_to_json(own_.reference_std)},
            {"subtract_symmetry_point", own_.subtract_symmetry_point}};
  }

 private:
  SoftBoundsReferenceParameter own_;
};

}  // namespace

std::shared_ptr<const DeviceModel> make_soft_bounds_reference_device(const nlohmann::json& j,
                                                                     const std::string& where) {
  PulsedDeviceParameter p;
  SoftBoundsReferenceParameter own;
  config::ObjectReader r(j, where);
  r.find("type");
  p.read(r);
  r.read("mult_noise", own.mult_noise);
  r.read("slope_up_dtod", own.slope_up_dtod);
  r.read("slope_down_dtod", own.slope_down_dtod);
  r.read("reference_mean", own.reference_mean);
  r.read("reference_std", own.reference_std);
  r.read("subtract_symmetry_point", own.subtract_symmetry_point);
  r.finish();
  p.validate(where);
  const config::RangeCheck c(where);
  c.at_least("slope_up_dtod", own.slope_up_dtod, 0.0);
  c.at_least("slope_down_dtod", own.slope_down_dtod, 0.0);
  c.at_least("reference_std", own.reference_std, 0.0);
  c.finite("reference_mean", own.reference_mean);
  return std::make_shared<SoftBoundsReferenceDevice>(p, own);
}

}  // namespace aimc
