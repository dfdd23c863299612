// SoftBoundsPmaxDevice (aihwkit's): a SoftBounds device given by the number
// of pulses p_max that takes it from range_min towards range_max and the
// relative step alpha. With b = (range_max − range_min)/(1 − exp(−p_max·alpha)):
//   w_min = range_min, w_max = range_min + b, dw_min = b·alpha,
//   up_down = 1 + 2·range_min/b
// (w_min, w_max, dw_min and up_down are computed: JSON null).
#include <cmath>

#include "engine/error.h"
#include "layers/devices/pulsed/linear_step.h"

namespace aimc {
namespace {

struct PmaxParameter {
  int p_max = 1000;
  float alpha = 0.0005f;
  float range_min = -1.f;
  float range_max = 1.f;
};

constexpr const char* kComputed[] = {"w_min", "w_max", "dw_min", "up_down"};

class SoftBoundsPmaxDevice : public LinearStepModel {
 public:
  SoftBoundsPmaxDevice(const PulsedDeviceParameter& p, const LinearStepParameter& ls, const PmaxParameter& pm)
      : LinearStepModel("SoftBoundsPmaxDevice", true, p, ls), pm_(pm) {}
  nlohmann::json to_json() const override {
    nlohmann::json j = LinearStepModel::to_json();
    for (const char* key : kComputed) j[key] = nullptr;
    return j;
  }

 protected:
  nlohmann::json own_json() const override {
    nlohmann::json j = LinearStepModel::own_json();
    j["p_max"] = pm_.p_max;
    j["alpha"] = config::float_to_json(pm_.alpha);
    j["range_min"] = config::float_to_json(pm_.range_min);
    j["range_max"] = config::float_to_json(pm_.range_max);
    return j;
  }

 private:
  PmaxParameter pm_;
};

}  // namespace

std::shared_ptr<const DeviceModel> make_soft_bounds_pmax_device(const nlohmann::json& j, const std::string& where) {
  const config::RangeCheck c(where);
  nlohmann::json in = j;
  if (!in.is_object()) throw ConfigError(where + ": expected a JSON object, got " + j.dump());
  for (const char* key : kComputed) {
    if (in.contains(key) && !in[key].is_null())
      c.fail(key, in[key].dump(), "null (computed from p_max, alpha, range_min and range_max)");
    in.erase(key);
  }
  PulsedDeviceParameter p;
  LinearStepParameter ls;
  ls.make_soft_bounds();
  PmaxParameter pm;
  config::ObjectReader r(in, where);
  r.find("type");
  p.read(r);
  ls.read(r, true);
  r.read("p_max", pm.p_max);
  r.read("alpha", pm.alpha);
  r.read("range_min", pm.range_min);
  r.read("range_max", pm.range_max);
  r.finish();
  c.greater("p_max", pm.p_max, 0.0);
  c.greater("alpha", pm.alpha, 0.0);
  c.finite("range_min", pm.range_min);
  if (!(pm.range_max > pm.range_min) || !std::isfinite(pm.range_max))
    c.fail("range_max", config::format_number(pm.range_max), "> range_min (" + config::format_number(pm.range_min) + ")");
  const double b = double(pm.range_max - pm.range_min) / (1.0 - std::exp(-double(pm.p_max) * pm.alpha));
  p.w_min = pm.range_min;
  p.w_max = float(pm.range_min + b);
  p.dw_min = float(b * pm.alpha);
  p.up_down = float(1.0 + 2.0 * pm.range_min / b);
  p.validate(where);
  ls.validate(where);
  return std::make_shared<SoftBoundsPmaxDevice>(p, ls, pm);
}

}  // namespace aimc
