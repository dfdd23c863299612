// The registry of tile device models (see tile_device.h).
#include "layers/devices/tile_device.h"

#include "layers/devices/compound/compound_device.h"
#include "layers/devices/pulsed/pulsed_device.h"
#include "layers/devices/registry.h"
#include "engine/error.h"

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
        {"IdealDevice", make_ideal_device},
        {"VectorUnitCell", make_vector_unit_cell},
        {"ReferenceUnitCell", make_reference_unit_cell},
        {"OneSidedUnitCell", make_one_sided_unit_cell},
        {"TransferCompound", make_transfer_compound},
        {"BufferedTransferCompound", make_buffered_transfer_compound},
        {"ChoppedTransferCompound", make_chopped_transfer_compound},
        {"MixedPrecisionCompound", make_mixed_precision_compound}};
    for (const PresetDeviceType& t : preset_device_types()) types.emplace_back(t.name, t.make);
    return types;
  }());
  return r;
}

}  // namespace

void TileDevice::update_with(const PulseOptions& options, const float* x, const float* d, std::int64_t n, float lr,
                             float* w, std::uint64_t seed) {
  (void)options, (void)x, (void)d, (void)n, (void)lr, (void)w, (void)seed;
  throw ValueError("this tile device cannot be a sub-device that needs other update parameters or pulse directions");
}

void TileDevice::reset_elements(float* w, const std::vector<std::int64_t>& elements, std::uint64_t seed) {
  (void)w, (void)elements, (void)seed;
  throw ValueError("this tile device cannot reset single elements");
}

std::shared_ptr<const DeviceModel> make_device_model(const nlohmann::json& j, const std::string& where) {
  return registry().get(j, where)(j, where);
}

void register_device_model(const std::string& type, DeviceModelFactory factory) {
  registry().add(type, std::move(factory));
}

std::vector<std::string> device_model_types() { return registry().names(); }

}  // namespace aimc
