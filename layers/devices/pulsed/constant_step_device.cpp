// ConstantStepDevice (aihwkit's): every pulse moves the weight by the
// element's step dwmin_up / dwmin_down times (1 + dw_min_std·ξ), clipped to
// the element's bounds. No fields of its own.
#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

class ConstantStepDevice : public PulsedDeviceModel {
 public:
  static constexpr const char* kType = "ConstantStepDevice";
  explicit ConstantStepDevice(const PulsedDeviceParameter& p) { common_ = p; }
  std::string base_type() const override { return kType; }
  analog::PulsedLawParams law() const override {
    analog::PulsedLawParams l;
    l.law = analog::PulsedLaw::ConstantStep;
    l.dw_min_std = common_.dw_min_std;
    return l;
  }

 protected:
  nlohmann::json own_json() const override { return {{"type", kType}}; }
};

}  // namespace

std::shared_ptr<const DeviceModel> make_constant_step_device(const nlohmann::json& j, const std::string& where) {
  PulsedDeviceParameter p;
  config::ObjectReader r(j, where);
  r.find("type");
  p.read(r);
  r.finish();
  p.validate(where);
  // aihwkit's ConstantStepDevice has no write noise.
  if (p.write_noise_std != 0.f)
    config::RangeCheck(where).fail("write_noise_std", config::format_number(p.write_noise_std),
                                   "0 (ConstantStepDevice has no write noise)");
  return std::make_shared<ConstantStepDevice>(p);
}

}  // namespace aimc
