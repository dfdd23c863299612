// The registry of tile device models (see tile_device.h).
#include "layers/devices/tile_device.h"

#include "layers/devices/pulsed/pulsed_device.h"
#include "layers/devices/registry.h"

namespace aimc {
namespace {

devices::Registry<DeviceModelFactory>& registry() {
  static devices::Registry<DeviceModelFactory> r("device", [] {
    std::vector<std::pair<std::string, DeviceModelFactory>> types{
        {"ConstantStepDevice", make_constant_step_device},
        {"LinearStepDevice", make_linear_step_device},
        {"SoftBoundsDevice", make_soft_bounds_device},
        {"SoftBoundsPmaxDevice", make_soft_bounds_pmax_device},
        {"SoftBoundsReferenceDevice", make_soft_bounds_reference_device},
        {"ExpStepDevice", make_exp_step_device},
        {"PowStepDevice", make_pow_step_device},
        {"PiecewiseStepDevice", make_piecewise_step_device},
        {"IdealDevice", make_ideal_device}};
    for (const PresetDeviceType& t : preset_device_types()) types.emplace_back(t.name, t.make);
    return types;
  }());
  return r;
}

}  // namespace

std::shared_ptr<const DeviceModel> make_device_model(const nlohmann::json& j, const std::string& where) {
  return registry().get(j, where)(j, where);
}

void register_device_model(const std::string& type, DeviceModelFactory factory) {
  registry().add(type, std::move(factory));
}

std::vector<std::string> device_model_types() { return registry().names(); }

}  // namespace aimc
