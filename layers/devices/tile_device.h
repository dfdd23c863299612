// The device an analog tile's weights live on when the tile learns by pulses
// (TILE_CLASS_ANALOG, REFERENCE.md section 6). A DeviceModel is the immutable
// description read from the RPU config ({"type": "ConstantStepDevice", ...});
// make() builds the TileDevice of one tile: its hidden parameters (drawn once
// per chip, device to device) and its update rule.
//
// Hidden parameters are entries of the tile's TileState, named as aihwkit's
// hidden parameters ("max_bound", "dwmin_up", ...; a compound device's
// sub-devices prefix theirs with "<k>_"), so the owning layer registers them
// as buffers and a checkpoint restores them; the random-stream counters of
// the update are entries too, so a restored tile continues bit for bit.
//
// Models are plug-ins: a registry by type name builds one from JSON
// (make_device_model); a new device type is one new file plus its registration.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/tensor.h"
#include "kernels/analog/pulsed_law.h"
#include "layers/tiles/tile_state.h"

namespace aimc {

// Where a tile device draws from and keeps its state.
struct TileDeviceContext {
  std::int64_t out_size = 0, in_size = 0;
  std::uint64_t seed = 0;     // the chip seed
  std::uint64_t tile_id = 0;  // selects the tile's streams (kernels/analog/tile_streams.h)
  TileState* state = nullptr;
  std::string prefix;         // prefix of the entry names ("" or "<k>_" in a compound)
  // Added to every stream number the device draws from: sub-device k of a
  // compound uses k << 56 (kSubDeviceStreamShift) so that its draws differ
  // from its siblings'.
  std::uint64_t stream_offset = 0;
  // The pulse trains (UpdatePulses stream) use this offset instead when set:
  // sub-devices that receive the same coincidences (a VectorUnitCell
  // updating all of them) keep their compound's, as aihwkit's do.
  std::optional<std::uint64_t> pulse_stream_offset;
  analog::UpdatePulseParams update;  // the config's UpdateParameters
};

constexpr int kSubDeviceStreamShift = 56;

// How a compound pulses one of its sub-devices (TileDevice::update_with).
struct PulseOptions {
  const analog::UpdatePulseParams* update = nullptr;  // other UpdateParameters (nullptr: the device's own)
  analog::PulseDirections directions = analog::PulseDirections::Both;
};

class TileDevice {
 public:
  virtual ~TileDevice() = default;
  // W ← W − lr·Σ_m d_mᵀ x_m by the device's update rule, for x [n, in] and
  // d [n, out] (contiguous float32); w [out, in] is the tile's weight; seed
  // the tile's chip seed (a loaded checkpoint may have changed it).
  virtual void update(const float* x, const float* d, std::int64_t n, float lr, float* w, std::uint64_t seed) = 0;
  // Once per mini-batch after the updates: decay, diffusion (write noise),
  // a compound's transfers. w and seed as in update.
  virtual void post_update(float* w, std::uint64_t seed) = 0;
  // The weights were set from outside (initialisation, set_weights, a
  // loaded checkpoint): keep what the devices can hold (clip to the bounds).
  virtual void weights_set(float* w) = 0;
  // A new chip: the hidden parameters drawn again for ctx.seed, counters reset.
  virtual void reseed(std::uint64_t seed) = 0;
  // Device drift over delta_t (aihwkit's drift_weights; only when asked).
  // Devices without drift leave w alone.
  virtual void drift_weights(float* w, float delta_t, std::uint64_t seed) { (void)w, (void)delta_t, (void)seed; }
  // aihwkit's reset_columns: the columns start .. start+n−1 (modulo in_size;
  // n < 0: all) are reset, each element with probability reset_prob, to the
  // device's reset value. Devices without a reset leave w alone.
  virtual void reset_columns(float* w, std::int64_t start, std::int64_t n, float reset_prob, std::uint64_t seed) {
    (void)w, (void)start, (void)n, (void)reset_prob, (void)seed;
  }

  // Whether update and post_update take device pointers when the tile's
  // state is on a GPU (Module::to); otherwise the tile runs them on the host
  // (AnalogTile::on_host).
  virtual bool runs_on_gpu() const { return false; }

  // For compounds (layers/devices/compound/): update() with other update
  // parameters or pulse directions, and aihwkit's resetAtIndices (elements
  // k = i·in + j back to reset_bias + reset_std·ξ, clipped). Devices without
  // them throw ValueError.
  virtual void update_with(const PulseOptions& options, const float* x, const float* d, std::int64_t n, float lr,
                           float* w, std::uint64_t seed);
  virtual void reset_elements(float* w, const std::vector<std::int64_t>& elements, std::uint64_t seed);
};

class DeviceModel : public std::enable_shared_from_this<DeviceModel> {
 public:
  virtual ~DeviceModel() = default;
  virtual std::string type() const = 0;
  // Every field plus "type", with aihwkit's names.
  virtual nlohmann::json to_json() const = 0;
  // The tile device of one tile; adds its entries to ctx.state.
  virtual std::unique_ptr<TileDevice> make(const TileDeviceContext& ctx) const = 0;
  // aihwkit's weight granularity: the mean step of one pulse (0: none).
  virtual float granularity() const { return 0.f; }
};

using DeviceModelFactory =
    std::function<std::shared_ptr<const DeviceModel>(const nlohmann::json& j, const std::string& where)>;

// Builds a model from {"type": name, ...}; ConfigError naming `where` for an
// unknown type (listing the known ones), a bad field or a bad value.
std::shared_ptr<const DeviceModel> make_device_model(const nlohmann::json& j, const std::string& where = "device");
// Adds a device type (a plug-in); ConfigError if the name is taken.
void register_device_model(const std::string& type, DeviceModelFactory factory);
std::vector<std::string> device_model_types();

}  // namespace aimc
