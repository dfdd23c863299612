// The LinearStep family (aihwkit's LinearStepDevice, SoftBoundsDevice and
// SoftBoundsPmaxDevice share one law): a pulse moves w by slope·w + dwmin,
// up with (slope_up, dwmin_up) and down with (slope_down, dwmin_down), where
// per element
//   slope_up = −gamma_up·dwmin_up/ref_up, slope_down = −gamma_down·dwmin_down/ref_down
// so that the step has shrunk by the fraction gamma at the reference bound
// (ref_up = w_max, ref_down = w_min with mean_bound_reference, else the
// element's own bounds; reverse_up/down take the opposite bound shifted by
// reverse_offset). gamma_* = gamma + gamma_*_dtod·ξ (absolute spread), taken
// as magnitudes unless allow_increasing. mult_noise scales the whole step by
// (1 + dw_min_std·ξ), otherwise only dwmin. SoftBounds: gamma = 1, no spread,
// the element's own bounds (the step reaches 0 at the bound).
#pragma once

#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {

struct LinearStepParameter {
  float gamma_up = 0.f;
  float gamma_down = 0.f;
  float gamma_up_dtod = 0.05f;
  float gamma_down_dtod = 0.05f;
  bool allow_increasing = false;
  bool mean_bound_reference = true;
  bool mult_noise = true;
  bool reverse_up = false;
  bool reverse_down = false;
  float reverse_offset = 0.01f;

  // Only SoftBounds's fields (mult_noise, reverse_*) when soft_bounds.
  void read(config::ObjectReader& r, bool soft_bounds);
  void write(nlohmann::json& j, bool soft_bounds) const;
  void validate(const std::string& where) const;
  // The fixed values of SoftBoundsDevice.
  void make_soft_bounds();
};

class LinearStepModel : public PulsedDeviceModel {
 public:
  LinearStepModel(std::string type, bool soft_bounds, const PulsedDeviceParameter& p, const LinearStepParameter& ls)
      : type_(std::move(type)), soft_bounds_(soft_bounds), ls_(ls) {
    common_ = p;
  }
  std::string base_type() const override { return type_; }
  analog::PulsedLawParams law() const override;
  std::vector<std::string> law_value_names() const override { return {"slope_up", "slope_down"}; }
  void draw_law_values(const ChipValues& v) const override;

 protected:
  nlohmann::json own_json() const override;
  std::string type_;
  bool soft_bounds_;
  LinearStepParameter ls_;
};

}  // namespace aimc
