// Compound devices (aihwkit's unit cells): one tile
// weight made of several sub-devices k = 0..n−1, each a device of its own
// (layers/devices/tile_device.h) with its own weights W_k and hidden
// parameters. The tile's visible weight is their combination
// W = Σ_k γ_k·W_k, recomputed after every update, transfer and
// post-update step. A compound type is one file in this folder:
//   vector_unit_cell.cpp     VectorUnitCell (update policies, gamma_vec)
//   reference_unit_cell.cpp  ReferenceUnitCell (W = W_0 − W_1, only W_0 learns)
//   one_sided_unit_cell.cpp  OneSidedUnitCell (W = W_1 − W_0, both only move up; refresh)
//   transfer_compound.cpp    TransferCompound (Tiki-Taka)
//   buffered_transfer_compound.cpp  BufferedTransferCompound (TTv2)
//   chopped_transfer_compound.cpp   ChoppedTransferCompound (TTv3 / c-TTv2)
//   mixed_precision_compound.cpp    MixedPrecisionCompound (digital rank update, DigitalRankUpdateRPUConfig)
//
// State entries: sub-device k's weights are "<k>_weights" and its hidden
// parameters "<k>_max_bound", ... (TileDeviceContext::prefix "<k>_"); its
// random streams are offset by k << kSubDeviceStreamShift.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/analog/io_parameters.h"
#include "kernels/analog/tile_streams.h"
#include "layers/config/json_fields.h"
#include "layers/devices/tile_device.h"

namespace aimc {

// A compound device type (UnitCellRPUConfig's device must be one).
class CompoundDeviceModel : public DeviceModel {};
// A device with a digital rank update (DigitalRankUpdateRPUConfig's device must be one).
class DigitalRankUpdateDeviceModel : public DeviceModel {};

namespace compound {

using Models = std::vector<std::shared_ptr<const DeviceModel>>;

// "unit_cell_devices": an array of at least min_count device objects, each
// built by make_device_model (errors name "<where>.unit_cell_devices[k]").
// Absent: ConfigError (aihwkit's default list is empty, which no cell accepts).
Models read_devices(config::ObjectReader& r, std::size_t min_count);
nlohmann::json devices_json(const Models& models);

// A list of numbers that may be empty (aihwkit's gamma_vec and such); absent: fallback.
std::vector<float> read_float_list(config::ObjectReader& r, const char* key, std::vector<float> fallback);
nlohmann::json float_list_json(const std::vector<float>& v);

// The sub-devices of one tile and their weights.
class SubDevices {
 public:
  // Builds models[k] with updates[k] as its UpdateParameters. shared_pulses:
  // every sub-device receives the compound's pulse trains (same
  // coincidences; own cycle-to-cycle noise).
  SubDevices(const TileDeviceContext& ctx, const Models& models,
             const std::vector<analog::UpdatePulseParams>& updates, bool shared_pulses);

  std::size_t size() const { return devices_.size(); }
  TileDevice& device(std::size_t k) { return *devices_[k]; }
  float* weights(std::size_t k) { return weights_[k].data<float>(); }
  std::int64_t numel() const { return out_ * in_; }

  // w = Σ_k gamma[k]·W_k.
  void reduce(const std::vector<float>& gamma, float* w);
  // Every sub-device's post-update step on its own weights.
  void post_update(std::uint64_t seed);
  void reseed(std::uint64_t seed);

 private:
  std::int64_t out_, in_;
  std::vector<std::unique_ptr<TileDevice>> devices_;
  std::vector<Tensor> weights_;
};

// An int64 state entry "<prefix><name>" of `size` values (0: a scalar), zero.
Tensor add_counter(const TileDeviceContext& ctx, const std::string& name, std::int64_t size = 0);
inline std::int64_t& value(Tensor& counter, std::int64_t k = 0) { return counter.data<std::int64_t>()[k]; }

// The compound's own streams (its sub-devices' are offset further).
struct Streams {
  std::uint64_t tile_id = 0, offset = 0;
  explicit Streams(const TileDeviceContext& ctx) : tile_id(ctx.tile_id), offset(ctx.stream_offset) {}
  std::uint64_t stream(analog::TileStream purpose) const { return analog::tile_stream(tile_id, purpose) + offset; }
  // Uniform k in [0, 1) of the CompoundChoice stream (four per Philox block).
  float uniform(std::uint64_t seed, std::uint64_t k) const;
};

// Analog reads of a sub-device's weights (transfers, refreshes): forward
// passes with `io` (kernels/cpu/analog_mvm.h) drawing from the tile's
// TransferRead stream at the state counter "<prefix>read_counter" (its
// AVERAGE_ABS_MAX running value is "<prefix>read_nm_running"); the
// per-output-line values of the read are drawn per chip from block 2^40 of
// that stream (again when a loaded state carries another seed).
class AnalogReader {
 public:
  AnalogReader(const TileDeviceContext& ctx, const IOParameters& io);
  // Y[n, out] = analog(W·V) for V [n, in].
  void read(const float* w, const float* v, std::int64_t n, float* y, std::uint64_t seed);
  void reseed(std::uint64_t seed);

 private:
  void draw_lines(std::uint64_t seed);
  IOParameters io_;
  Streams streams_;
  std::int64_t out_, in_;
  Tensor counter_;
  std::vector<float> nonlinearity_, noise_, v_offset_;
  float slope_gain_ = 1.f;
  Tensor nm_running_;             // AVERAGE_ABS_MAX running value (< 0: unset), a state entry
  std::uint64_t lines_seed_ = 0;  // the seed the line values were drawn with
};

}  // namespace compound

// Built-in compound types (registered in layers/devices/tile_device.cpp).
std::shared_ptr<const DeviceModel> make_vector_unit_cell(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_reference_unit_cell(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_one_sided_unit_cell(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_transfer_compound(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_mixed_precision_compound(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_buffered_transfer_compound(const nlohmann::json& j, const std::string& where);
std::shared_ptr<const DeviceModel> make_chopped_transfer_compound(const nlohmann::json& j, const std::string& where);

}  // namespace aimc
