// TileProgramming: the inference device state of one tile (REFERENCE.md
// section 5): the programmed conductances, their drift exponents, the weights
// read back at the last drift, and the drift-compensation baseline and alpha.
//
//   program(W_t):  g_T, params = converter(W_t) (per tile); g_prog and ν from
//                  the noise model; W_read = converter⁻¹(g_prog); baseline =
//                  readout of the identity batch through the non-ideal forward
//                  on W_read (on W_t with an exact-reference compensation); α = 1.
//   drift(t):      g = drift and read noise of g_prog at t (fresh read noise at
//                  every call); W_read = converter⁻¹(g); α = baseline / readout(W_read).
//
// Two drift paths (InferenceRPUConfig.reconvert_weights_before_drift):
//   false (default, physical): drift acts on the stored programmed
//     conductances of each device, each with its own exponent ν, and read
//     noise follows each device's own conductance.
//   true (aihwkit's): the programmed weights W_prog = converter⁻¹(g_prog) are
//     converted to conductances again, with the scale of their own max|W_prog|,
//     and those drift with the stored ν of the same device slot. The
//     programming offset of a weight's other device is folded into the
//     difference and drifts with the main device's ν, and since max|W_prog| >
//     max|W_target| the conductances sit lower, where read noise is larger
//     (Q_s ∝ g_r^−0.65): on a 512x512 PCM tile at level 1.0 the weight std at
//     1 s is 0.059 (aihwkit) against 0.056.
// There is no read noise until the first drift (both paths).
//
// Random streams: (tile seed, tile_stream(tile_id, Programming)) for
// programming, (…, Drift) for drift (kernels/analog/tile_streams.h).
// Value (plane p, conductance i) of a call is normal number p·n₄ + i of the
// call's first block, n₄ = n rounded up to 4: programming planes 0..K−1 are
// the programming noise of device k and K..2K−1 its drift exponent; drift
// planes k·Q + q are the Q = drift_normals() normals of device k. Each call
// advances its stream's counter by the blocks it used; the counters are part
// of the state, so a restored tile draws exactly what the saved one would.
//
// On a GPU (the buffers were moved there with the tile, and the model and its
// converter have CUDA twins: runs_on_gpu()), program and drift run there on
// device arrays: the same planes of normals (cuda::fill_normal, the bits of
// cpu::fill_normal), the same element laws, the readout's column sums on the
// device; the host sees a copy of the target weights (the finite check and
// the converter's per-tile scale), the sums and the few state numbers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"
#include "kernels/analog/tile_streams.h"
#include "layers/devices/drift_compensation.h"
#include "layers/devices/noise_model.h"

namespace aimc {

class TileProgramming {
 public:
  // Y[in, out] = the tile's eval forward of the identity batch on `weights`
  // (no compensation applied); weights and y on the tile's device.
  using Readout = std::function<void(const float* weights, float* y)>;

  TileProgramming(std::shared_ptr<const NoiseModel> model, std::shared_ptr<const DriftCompensation> compensation,
                  std::int64_t out_size, std::int64_t in_size, std::uint64_t tile_id,
                  bool reconvert_weights_before_drift = false);

  // target: the tile's stored weights [out, in] (on the buffers' device);
  // seed: the tile's (chip) seed.
  void program(const float* target, std::uint64_t seed, const Readout& readout);
  // Needs program() first.
  void drift(double t_inference, std::uint64_t seed, const Readout& readout);

  bool programmed() const { return state_value(0) != 0.0; }
  // Forgets the programming (the target weights changed); the tensors stay.
  void reset() { set_state_value(0, 0.0); }
  // A new chip: forgotten programming and the stream counters back at 0
  // (the tensors stay, so an owner's registered buffers stay valid).
  void restart() {
    set_state_value(0, 0.0);
    set_state_value(1, -1.0);
    set_state_value(2, 0.0);
    set_state_value(3, 0.0);
  }
  // Seconds after programming of the last drift (< 0: not drifted since programming).
  double t_inference() const { return state_value(1); }
  // The weights the tile computes with in eval mode [out, in].
  const float* weights() const { return w_read_.data<float>(); }
  // α per output (one value broadcast when the compensation is global);
  // empty without a compensation.
  const Tensor& alpha() const { return alpha_; }

  // State saved with the model, by name: "conductances" [K, out, in] (µS),
  // "drift_nu" [K, out, in], "w_read" [out, in], "conversion" [P] (converter
  // parameters), "programming" float64 [4] (programmed flag, t_inference,
  // programming and drift stream counters), and with a compensation
  // "drift_baseline" and "drift_alpha" ([1] or [out]).
  std::vector<std::pair<std::string, Tensor>> buffers() const;

  const NoiseModel& noise_model() const { return *model_; }

 private:
  // Element i of the state, read from the host or the GPU it was moved to.
  double state_value(int i) const;
  void set_state_value(int i, double v);
  // Calls body(lo, len, xi) on chunks [lo, lo + len) of the n conductance
  // indices, xi holding `planes` planes of len normals (plane-major) drawn
  // from (seed, stream) at `block` (see the file comment).
  void for_chunks(std::uint64_t seed, analog::TileStream stream, std::uint64_t block, int planes,
                  const std::function<void(std::int64_t, std::int64_t, const float*)>& body) const;
  void update_alpha(const Readout& readout);
  // The GPU paths of program and drift (see the file comment).
  void program_cuda(const float* target, std::uint64_t seed, const Readout& readout);
  void drift_cuda(double t_inference, std::uint64_t seed, const Readout& readout);
  // xi[p·n + i] = normal p·n₄ + i of (seed, stream) from `block`, p < planes (device).
  Tensor normals_cuda(std::uint64_t seed, analog::TileStream stream, std::uint64_t block, int planes) const;
  // readout() of the identity batch's outputs on `weights`, on the buffers' device.
  std::vector<float> read_compensation(const Readout& readout, const float* weights) const;
  bool on_gpu() const { return g_prog_.device().is_cuda(); }

  std::shared_ptr<const NoiseModel> model_;
  std::shared_ptr<const DriftCompensation> compensation_;
  std::int64_t out_size_, in_size_, n_;
  std::uint64_t tile_id_;
  bool reconvert_weights_before_drift_;
  Tensor g_prog_, nu_, w_read_, params_, state_, baseline_, alpha_;
};

// Whether a state-dict key names TileProgramming state ("..._conductances",
// "..._programming", ...), which exists only once a tile was programmed.
bool is_tile_programming_key(const std::string& key);

}  // namespace aimc
