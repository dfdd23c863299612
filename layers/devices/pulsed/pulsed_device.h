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

struct PulsedDeviceParameter {
  int construction_seed = 0;  // aihwkit's; aimc draws from the chip seed (accepted, unused)
  float corrupt_devices_prob = 0.f;
  float corrupt_devices_range = 1000.f;
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
  // Not implemented yet: accepted only at these values (ConfigError otherwise).
  float write_noise_std = 0.f;
  bool apply_write_noise_on_set = true;
  bool count_pulses = false;
  nlohmann::json drift = nullptr;  // aihwkit's DriftParameter (device drift): null only for now

  // Reads / writes / checks the shared fields; a device reads its own next.
  void read(config::ObjectReader& r);
  void write(nlohmann::json& j) const;
  void validate(const std::string& where) const;
};

// A pulsed device type: the shared fields, its law and its own per-element values.
class PulsedDeviceModel : public DeviceModel {
 public:
  const PulsedDeviceParameter& common() const { return common_; }
  // The device-wide values the step law reads.
  virtual analog::PulsedLawParams law() const = 0;
  // aihwkit names of the law's per-element values p0, p1 ({} when it has none).
  virtual std::vector<std::string> law_value_names() const { return {}; }
  // Draws p0, p1 [out·in] for one chip from the standard normals xi0, xi1
  // (one per element) and the drawn bounds and steps.
  virtual void draw_law_values(std::int64_t size, const float* xi0, const float* xi1, const float* max_bound,
                               const float* min_bound, const float* up, const float* down, float* p0,
                               float* p1) const {
    (void)size, (void)xi0, (void)xi1, (void)max_bound, (void)min_bound, (void)up, (void)down, (void)p0, (void)p1;
  }

  nlohmann::json to_json() const override;
  std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const override;

 protected:
  // The device's own fields, with "type" (to_json adds the shared ones).
  virtual nlohmann::json own_json() const = 0;
  PulsedDeviceParameter common_;
};

// Built-in device types (registered in layers/devices/tile_device.cpp).
std::shared_ptr<const DeviceModel> make_constant_step_device(const nlohmann::json& j, const std::string& where);

}  // namespace aimc
