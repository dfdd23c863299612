// AnalogTile: one physical crossbar and its periphery. It owns the weights it
// stores ([out, in], normalised conductance units), the IOParameters of the
// forward and backward passes, the per-output-line values drawn once at
// construction (output noise spread, nonlinearity, voltage offsets, the
// read-asymmetry factors of the weights), the noise-management
// running values, and the Philox counters of its random streams.
//
// Inference programming (REFERENCE.md section 5, layers/tiles/tile_programming.h):
// with a noise model set, program_weights() programs the stored weights onto
// the devices and drift_weights(t) reads them t seconds later; while the tile
// is programmed, its eval-mode passes (is_test, no stand-in weights) compute
// with the read weights, and the forward outputs are multiplied by the drift
// compensation's alpha. Changing the stored weights through set_weights of
// the owner or an optimizer step forgets the programming (reset_programming).
//
// Streams: the tile draws from (seed, analog::tile_stream(tile_id, purpose))
// (kernels/analog/tile_streams.h); each pass advances that stream's counter
// by the blocks it reserved, so a tile's noise depends only on (seed,
// tile_id, how many passes ran before), never on threads.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "kernels/analog/io_parameters.h"
#include "kernels/analog/pulsed_law.h"
#include "layers/tiles/tile_programming.h"
#include "layers/tiles/tile_state.h"

namespace aimc::cpu {
struct AnalogLineValues;
}

namespace aimc {

class DeviceModel;
class TileDevice;

class AnalogTile {
 public:
  AnalogTile(std::int64_t out_size, std::int64_t in_size, const IOParameters& forward_io,
             const IOParameters& backward_io, std::uint64_t seed, std::uint64_t tile_id);
  ~AnalogTile();

  std::int64_t out_size() const { return out_size_; }
  std::int64_t in_size() const { return in_size_; }
  std::uint64_t tile_id() const { return tile_id_; }
  const IOParameters& forward_io() const { return forward_io_; }
  const IOParameters& backward_io() const { return backward_io_; }

  // The stored weights: a float32 leaf [out, in] that requires grad.
  Tensor& weight() { return weight_; }
  const Tensor& weight() const { return weight_; }

  // Y[n, out] = analog(W x) for X[n, in] (contiguous float32, no overlap).
  // weights: a stand-in [out, in] for the stored W (hardware-aware training's
  // modified weights), nullptr for W itself.
  void forward(const float* x, std::int64_t n, float* y, bool is_test, const float* weights = nullptr);
  // DX[n, in] = analog(Wᵀ d) for D[n, out].
  void backward(const float* d, std::int64_t n, float* dx, bool is_test, const float* weights = nullptr);
  // Pulsed training (TILE_CLASS_ANALOG, layers/devices/tile_device.h): the
  // weights live on the devices of `model`, whose hidden parameters join the
  // tile state (call while the tile is built, before its layer registers the
  // state). Such a tile's weight gets no autograd gradient: the backward
  // pass records the tile's input x and error d instead (record_update) and
  // the optimizer (AnalogSGD) calls apply_updates with its learning rate.
  void set_device(const DeviceModel& model, const analog::UpdatePulseParams& update);
  bool pulsed() const { return device_ != nullptr; }
  // aihwkit's get/set_hidden_parameters: the device's state entries (every
  // entry set_device added: "max_bound", "dwmin_up", ..., a compound's
  // "0_weights", the stream counters), in order; empty without a device.
  // set_hidden_parameter copies `value` into the entry of that name:
  // ValueError for an unknown name (listing the known ones) or a non-finite
  // value, ShapeError for a shape that does not fit.
  std::vector<std::pair<std::string, Tensor>> hidden_parameters() const;
  void set_hidden_parameter(const std::string& name, const Tensor& value);
  // Keeps x [n, in] and d [n, out] (float32) for the next apply_updates.
  void record_update(Tensor x, Tensor d);
  // Every recorded (x, d) through the device's update at learning rate lr,
  // in the order recorded, then the device's per-mini-batch steps (decay,
  // diffusion, ...). Forgets the programming. No-op when nothing was recorded.
  void apply_updates(float lr);
  // Drops the recorded (x, d) without updating.
  void clear_updates() { pending_.clear(); }
  std::size_t pending_updates() const { return pending_.size(); }
  // The (x, d) recorded since the last apply_updates or clear_updates, in
  // order (data-parallel training gathers them over shards).
  const std::vector<std::pair<Tensor, Tensor>>& recorded_updates() const { return pending_; }
  // The stored weights were set from outside: the devices keep what they
  // can hold (a pulsed tile clips to its bounds); nothing otherwise.
  void weights_set();

  // The chip seed (kept in the state, so a checkpoint restores it).
  std::uint64_t seed() const;

  // Counters of the forward and backward streams (Philox blocks consumed):
  // saved in checkpoints so that a resumed run continues exactly.
  std::uint64_t forward_counter() const;
  std::uint64_t backward_counter() const;
  void set_counters(std::uint64_t forward, std::uint64_t backward);

  // The tile's running state as named, typed entries (tile_state.h), in this
  // order: "forward_counter", "backward_counter" (int64: Philox blocks the
  // stream consumed), "forward_nm_running", "backward_nm_running" (float32:
  // the AVERAGE_ABS_MAX running value, < 0 unset) and "seed" (int64 holding
  // the chip seed's 64 bits). Layers register each entry as a buffer, so a
  // checkpoint restores the chip and its noise streams exactly (the per-line
  // values are drawn again when a loaded seed differs).
  const TileState& state() const { return state_; }

  // The AVERAGE_ABS_MAX running value of the forward (pass 0) or backward (1) pass; < 0: unset.
  float nm_running(int pass) const;

  // Pulsed devices (TILE_CLASS_ANALOG), only when asked as in aihwkit:
  // device drift over delta_t (aihwkit's AnalogTile.drift_weights(delta_t),
  // DriftParameter) and the reset of columns start .. start+n−1 (n < 0: all)
  // with probability reset_prob per element (aihwkit's reset_columns).
  // Without a pulsed device they do nothing.
  void drift_device_weights(float delta_t);
  void reset_columns(std::int64_t start, std::int64_t n, float reset_prob = 1.f);

  // A new chip: a new seed, the per-line values drawn again, the stream
  // counters and running values reset, the programming forgotten. The stored
  // weights stay.
  void reseed(std::uint64_t seed);

  // The inference device model (nullptr model: the tile cannot be programmed).
  // reconvert_weights_before_drift: aihwkit's drift path (tile_programming.h).
  void set_inference_devices(std::shared_ptr<const NoiseModel> model,
                             std::shared_ptr<const DriftCompensation> compensation,
                             bool reconvert_weights_before_drift = false);
  bool can_program() const { return noise_model_ != nullptr; }
  // The noise model and its converter have CUDA twins (NoiseModel::runs_on_gpu):
  // on a GPU the tile programs and drifts there, else through a host copy.
  bool programs_on_gpu() const;
  // Programs the stored weights (ValueError without a noise model).
  void program_weights();
  // Drift and read noise at t_inference seconds after programming; programs first if needed.
  void drift_weights(double t_inference);
  bool programmed() const { return programming_ && programming_->programmed(); }
  void reset_programming() {
    if (programming_) programming_->reset();
  }
  // The programming state (nullptr until the first program_weights()).
  TileProgramming* programming() { return programming_.get(); }
  const TileProgramming* programming() const { return programming_.get(); }

 private:
  // On a GPU (its layer's Module::to moved the weights and state), forward
  // and backward run there (x, y, d, dx and a stand-in weights are then
  // device pointers), and so do the pulsed updates of a device whose
  // TileDevice::runs_on_gpu() (cuda::pulsed_update) and the programming and
  // drift of a noise model and converter with CUDA twins (programs_on_gpu():
  // every built-in one; a plug-in model without them falls back). The other
  // steps (reseeding, compound devices, write noise, resets) run through
  // on_host: the tile's tensors are copied to the host in place, the CPU
  // step runs (the CPU's draws and bits), and they go back.
  template <class Step>
  void on_host(Step&& step);
  // The weights, every state entry and the programming buffers.
  std::vector<Tensor> own_tensors() const;
  bool on_gpu() const { return weight_.device().is_cuda(); }
  // The pass's per-line values as device copies (made once per chip seed).
  cpu::AnalogLineValues device_line_values(int pass);
  // Y[n, out] ×= α of the drift compensation, y on the tile's device.
  void compensate(float* y, std::int64_t n) const;

  template <class Kernel>
  void run_pass(Kernel kernel, int pass, const IOParameters& io, const cpu::AnalogLineValues& lines, const float* in,
                std::int64_t n, float* out, bool is_test, const float* weights);

  // Y[in, out]: eval forward of the identity batch on `weights` (drift-compensation readout).
  void read_identity(const float* weights, float* y);

  std::int64_t out_size_, in_size_;
  IOParameters forward_io_, backward_io_;
  std::uint64_t lines_seed_, tile_id_;  // the seed the per-line values were drawn with
  Tensor weight_;
  // The values of one pass drawn once per chip (kernels/cpu/analog_mvm.h,
  // AnalogLineValues); empty when the io needs none.
  struct PassLines {
    std::vector<float> nonlinearity, noise, v_offset;  // per output line of the pass
    std::vector<float> w_asymmetry;                    // per weight, W's layout
    float slope_gain = 0.f;                            // ADC slope-calibration gain (0: from io)
  };
  PassLines forward_lines_;   // per output line (forward)
  PassLines backward_lines_;  // per input line (backward)
  // Their device copies while the tile is on a GPU, indexed by pass; `seed`:
  // the chip they were copied for (lines_seed_ at the time).
  struct DeviceLines {
    Tensor nonlinearity, noise, v_offset, w_asymmetry;
    std::uint64_t seed = 0;
    bool valid = false;
  };
  DeviceLines device_lines_[2];
  // Draws the per-line values for seed() unless they are from it already.
  void refresh_lines();
  void draw_lines(const IOParameters& io, std::int64_t lines, std::uint64_t seed, std::uint64_t stream,
                  std::uint64_t offset, std::uint64_t asym_offset, PassLines& out) const;
  static cpu::AnalogLineValues line_values(const PassLines& lines);

  TileState state_;
  // Handles of the state's entries (shared storage), indexed by pass (0 forward, 1 backward).
  Tensor counter_[2];     // int64 scalars
  Tensor nm_running_[2];  // float32 scalars
  Tensor seed_;           // int64 scalar: the seed's bits
  std::shared_ptr<const NoiseModel> noise_model_;
  std::shared_ptr<const DriftCompensation> compensation_;
  bool reconvert_weights_before_drift_ = false;
  std::unique_ptr<TileProgramming> programming_;
  std::unique_ptr<TileDevice> device_;
  std::size_t first_hidden_ = 0;  // index of the device's first state entry
  std::vector<std::pair<Tensor, Tensor>> pending_;  // (x, d) recorded by backward passes
};

}  // namespace aimc
