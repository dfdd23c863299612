// PiecewiseStepDevice (aihwkit's): the step is dwmin times a factor
// interpolated linearly between n nodes evenly spaced over the element's
// [min_bound, max_bound] (node 0 at min_bound, node n−1 at max_bound):
// piecewise_up for up pulses, piecewise_down for down pulses, times
// (1 + dw_min_std·ξ). One node: a constant factor. The schedule's step is
// dw_min·piecewise_up[n/2].
#include "layers/devices/pulsed/pulsed_device.h"

namespace aimc {
namespace {

struct PiecewiseStepParameter {
  std::vector<float> piecewise_up{1.f};
  std::vector<float> piecewise_down{1.f};
};

class PiecewiseStepDevice : public PulsedDeviceModel {
 public:
  static constexpr const char* kType = "PiecewiseStepDevice";
  PiecewiseStepDevice(const PulsedDeviceParameter& p, const PiecewiseStepParameter& own) : own_(own) { common_ = p; }
  std::string base_type() const override { return kType; }
  analog::PulsedLawParams law() const override {
    analog::PulsedLawParams l;
    l.law = analog::PulsedLaw::PiecewiseStep;
    l.dw_min_std = common_.dw_min_std;
    l.n_nodes = int(own_.piecewise_up.size());
    for (int k = 0; k < l.n_nodes; ++k) {
      l.piecewise_up[k] = own_.piecewise_up[k];
      l.piecewise_down[k] = own_.piecewise_down[k];
    }
    return l;
  }
  float granularity() const override { return common_.dw_min * own_.piecewise_up[own_.piecewise_up.size() / 2]; }

 protected:
  nlohmann::json own_json() const override {
    nlohmann::json up = nlohmann::json::array(), down = nlohmann::json::array();
    for (float v : own_.piecewise_up) up.push_back(config::float_to_json(v));
    for (float v : own_.piecewise_down) down.push_back(config::float_to_json(v));
    return {{"type", kType}, {"piecewise_up", up}, {"piecewise_down", down}};
  }

 private:
  PiecewiseStepParameter own_;
};

}  // namespace

std::shared_ptr<const DeviceModel> make_piecewise_step_device(const nlohmann::json& j, const std::string& where) {
  PulsedDeviceParameter p;
  PiecewiseStepParameter own;
  config::ObjectReader r(j, where);
  r.find("type");
  p.read(r);
  r.read("piecewise_up", own.piecewise_up);
  r.read("piecewise_down", own.piecewise_down);
  r.finish();
  p.validate(where);
  const config::RangeCheck c(where);
  const std::size_t n = own.piecewise_up.size();
  if (n > std::size_t(analog::kMaxPiecewiseNodes))
    c.fail("piecewise_up", std::to_string(n) + " nodes",
           "1 to " + std::to_string(analog::kMaxPiecewiseNodes) + " nodes");
  if (own.piecewise_down.size() != n)
    c.fail("piecewise_down", std::to_string(own.piecewise_down.size()) + " nodes",
           std::to_string(n) + " nodes (as many as piecewise_up)");
  for (std::size_t k = 0; k < n; ++k) {
    c.at_least("piecewise_up", own.piecewise_up[k], 0.0);
    c.at_least("piecewise_down", own.piecewise_down[k], 0.0);
  }
  return std::make_shared<PiecewiseStepDevice>(p, own);
}

}  // namespace aimc
