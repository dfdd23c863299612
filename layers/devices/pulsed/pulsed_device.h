// Pulsed devices (aihwkit's PulsedDevice family, REFERENCE.md section 6):
// every weight is one resistive device that moves by a small step per
// coincident pulse. PulsedDeviceParameter holds the fields all of them share
// (aihwkit's names and defaults); a device type (one file each:
// constant_step_device.cpp, ...) adds its own fields and its step law
// (kernels/analog/pulsed_law.h).
//
// Device-to-device values, drawn once per chip for every element (aihwkit's
// PulsedRPUDevice::populate), with ξ standard normals:
//   max_bound = w_max·(1 + w_max_dtod·ξ), min_bound = w_min·(1 + w_min_dtod·ξ)
//   gain = 1 + dw_min_dtod·ξ (exp(dw_min_dtod·ξ) with dw_min_dtod_log_normal)
//   r = up_down_dtod·ξ, up_bias = min(up_down, 0), down_bias = −max(up_down, 0)
//   dwmin_up = (up_bias + gain + r)·dw_min, dwmin_down = (down_bias + gain − r)·dw_min
//   enforce_consistency: steps taken as magnitudes, bounds swapped when
//     crossed, then max_bound ≥ 0 ≥ min_bound; otherwise crossed bounds meet
//     at their midpoint (a dead device)
//   corrupt_devices_prob: the device is stuck at a uniform value in its range
//     (clamped to ±corrupt_devices_range) and never moves
//   perfect_bias: the last column has steps dw_min and bounds 100·w_max/w_min
//   diffusion_rates = |diffusion·(1 + diffusion_dtod·ξ)|
//   reset_bias = reset + reset_dtod·ξ
//   decay_scales = 1 − 1/t with t = lifetime·(1 + lifetime_dtod·ξ) when t > 1
//     (0 when t ≤ 1; 1, no decay, when lifetime = 0)
// After each mini-batch (post_update): decay w ← (w − reset_bias)·decay_scale
// + reset_bias, then diffusion w += diffusion_rate·ξ, each clipped to the bounds.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/analog/pulsed_law.h"
#include "layers/config/json_fields.h"
#include "layers/devices/tile_device.h"

namespace aimc {

// aihwkit's DriftParameter (device drift, applied only when asked:
// AnalogTile::drift_device_weights(Δt)). Per element ν = nu·(1 + nu_dtod·ξ),
// drawn with the chip. Each call advances the device time by Δt/t_0; an
// element whose weight changed since the last call (by more than reset_tol)
// restarts its drift from the current weight w0 at the current time t_s,
// the others become w0·dt^(−ν') (+ a·(dt^(−ν') − 1) with a = g_offset·wg_ratio
// + w_offset) for dt = max(t − t_s, 1), with ν' = ν·(1 + nu_std·ξ) and, if
// nu_k ≠ 0, ν' − nu_k·log((w − w_offset)/wg_ratio + g_offset) + nu_k·log_g0;
// then w += w_noise_std·ξ and the bounds clip. nu = 0: no drift.
struct DriftParameter {
  float nu = 0.f;
  float nu_dtod = 0.f;
  float nu_std = 0.f;
  float wg_ratio = 1.f;
  float g_offset = 0.f;
  float w_offset = 0.f;
  float nu_k = 0.f;
  float log_g0 = 0.f;
  float t_0 = 1.f;
  float reset_tol = 1e-7f;
  float w_noise_std = 0.f;

  void read(const nlohmann::json& j, const std::string& where);
  nlohmann::json to_json() const;
  void validate(const std::string& where) const;
};

struct PulsedDeviceParameter {
  int construction_seed = 0;  // aihwkit's; aimc draws from the chip seed (accepted, unused)
  float corrupt_devices_prob = 0.f;
  float corrupt_devices_range = 0.1f;
  float diffusion = 0.f;
  float diffusion_dtod = 0.f;
  float dw_min = 0.001f;
  float dw_min_dtod = 0.3f;
  bool dw_min_dtod_log_normal = false;
  float dw_min_std = 0.3f;
  bool enforce_consistency = true;
  float lifetime = 0.f;
  float lifetime_dtod = 0.f;
  bool perfect_bias = false;
  float reset = 0.f;
  float reset_dtod = 0.f;
  float reset_std = 0.01f;
  float up_down = 0.f;
  float up_down_dtod = 0.01f;
  float w_max = 0.6f;
  float w_max_dtod = 0.3f;
  float w_min = -0.6f;
  float w_min_dtod = 0.3f;
  bool adjust_bounds_with_up_down = false;
  float adjust_bounds_with_up_down_dev = 0.f;
  // Write noise (aihwkit's write_noise_std, in units of dw_min): the device
  // keeps its true weights as the hidden parameter persistent_weights and the
  // tile's weights read persistent + write_noise_std·dw_min·ξ, drawn anew for
  // every element an update changes and for all after decay/diffusion and
  // (with apply_write_noise_on_set) when the weights are set.
  // ConstantStepDevice has none (0 only).
  float write_noise_std = 0.f;
  bool apply_write_noise_on_set = true;
  DriftParameter drift;
  // aihwkit's GPU-only pulse counters: accepted only false (ConfigError otherwise).
  bool count_pulses = false;

  // Reads / writes / checks the shared fields; a device reads its own next.
  void read(config::ObjectReader& r);
  void write(nlohmann::json& j) const;
  void validate(const std::string& where) const;
};

// A pulsed device type: the shared fields, its law and its own per-element values.
class PulsedDeviceModel : public DeviceModel {
 public:
  const PulsedDeviceParameter& common() const { return common_; }
  // The type name: the preset's (ReRamSBPresetDevice, ...) or the base type's.
  std::string type() const override;
  // The device type's own name (SoftBoundsReferenceDevice, ...).
  virtual std::string base_type() const = 0;
  // The device-wide values the step law reads.
  virtual analog::PulsedLawParams law() const = 0;
  // aihwkit names of the law's per-element values p0, p1 ({} when it has none).
  virtual std::vector<std::string> law_value_names() const { return {}; }
  // The step the pulse schedule counts in (aihwkit's weight granularity).
  float granularity() const override { return common_.dw_min; }
  // The chip's per-element values when the law's own are drawn (arrays of
  // `size` = out·in, row-major); xi[0..3] are four standard normals per
  // element reserved for the law. The law may also change the bounds and the
  // reset bias (SoftBoundsReference).
  struct ChipValues {
    std::int64_t size = 0;
    const float* xi[4] = {};
    float *max_bound = nullptr, *min_bound = nullptr, *up = nullptr, *down = nullptr, *reset_bias = nullptr;
    float *p0 = nullptr, *p1 = nullptr;  // p1 null when the law has one value
  };
  virtual void draw_law_values(const ChipValues& v) const { (void)v; }

  nlohmann::json to_json() const override;
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override;

 protected:
  // The device's own fields, with "type" (to_json adds the shared ones).
  virtual nlohmann::json own_json() const = 0;
  PulsedDeviceParameter common_;

 private:
  friend std::shared_ptr<const DeviceModel> make_preset_device(const nlohmann::json&, const std::string&,
                                                               const char*, const char*, const nlohmann::json&);
  std::string preset_type_;  // set by make_preset_device only
};

// A preset device (layers/devices/pulsed/preset_devices.cpp): a device of
// type `base` whose defaults are `defaults` (aihwkit's *PresetDevice
// classes); the fields of j override them. Its JSON says "type": preset.
std::shared_ptr<const DeviceModel> make_preset_device(const nlohmann::json& j, const std::string& where,
                                                      const char* preset, const char* base,
                                                      const nlohmann::json& defaults);
// The preset device types (registered in layers/devices/tile_device.cpp).
struct PresetDeviceType {
  const char* name;
  std::shared_ptr<const DeviceModel> (*make)(const nlohmann::json& j, const std::string& where);
};
const std::vector<PresetDeviceType>& preset_device_types();

// Built-in device types (registered in layers/devices/tile_device.cpp).
std::shared_ptr<const DeviceModel> make_constant_step_device(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_linear_step_device(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_soft_bounds_device(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_soft_bounds_pmax_device(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_soft_bounds_reference_device(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_exp_step_device(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_pow_step_device(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_piecewise_step_device(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_ideal_device(const nlohmann::json& j, const std::string& where);

}  // namespace aimc
