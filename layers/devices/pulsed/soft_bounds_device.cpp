// SoftBoundsDevice (aihwkit's): a LinearStep device whose step falls
// linearly to 0 at the element's own bound (gamma 1, see linear_step.h):
// up w += dwmin_up·(1 − w/max_bound), down w −= dwmin_down·(1 − w/min_bound).
#include "layers/devices/pulsed/linear_step.h"

namespace aimc {

std::shared_ptr<const DeviceModel> make_soft_bounds_device(const nlohmann::json& j, const std::string& where) {
  PulsedDeviceParameter p;
  LinearStepParameter ls;
  ls.make_soft_bounds();
  config::ObjectReader r(j, where);
  r.find("type");
  p.read(r);
  ls.read(r, true);
  r.finish();
  p.validate(where);
  ls.validate(where);
  return std::make_shared<LinearStepModel>("SoftBoundsDevice", true, p, ls);
}

}  // namespace aimc
