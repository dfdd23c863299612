// The lightning-style analog forward of TorchInferenceRPUConfig (REFERENCE.md
// section 4; aihwkit-lightning 2.1's TorchLinear.linear) as one differentiable
// op over a grid of tiles. Units: x and y in layer units; v = x/r in DAC units
// (full range ±1); tile outputs before ·r in "v·W" units.
//
// For every tile column c with input range r_c (1 and no clip when the config's
// input range is off) and every tile (t_r, c) with stored weights W, with
// wmax_i = max_j |W_ij| (row i) and wmax = max_i wmax_i (the tile):
//   v   = clip(x_c, ±r_c) / r_c                 input range; gradient to x only
//                                               inside the range (|x| ≤ r), to
//                                               r_c as REFERENCE.md section 3
//   v   = res·round(v/res), res = 2·inp_res     DAC (inp_res > 0; > 1 means
//                                               states: res = 2/inp_res), round
//                                               half to even, straight-through
//   W'  = q·round(clamp(W/q, ±n/2))             DISCRETIZE* modifier, training
//         q = 2·wmax/n, n = max(res, 1/res)     AND eval (wmax_i for the
//                                               *_PER_CHANNEL types), STE
//   W' += std_dev·wmax·ξ                        ADD_NORMAL* modifier, training
//                                               only (wmax_i per channel); the
//                                               gradient goes to W
//   z   = v·W'ᵀ                                 float GEMM
//   z  += out_noise·wmax/sqrt(C)·ξ              training only (C tile columns;
//                                               wmax_i with out_noise_per_channel)
//   z   = q·round(z/q), q = 2·b·out_res         ADC quantisation (out_res > 0),
//                                               straight-through
//   z   = clip(z, ±b), b = out_bound·wmax       out_bound > 0 (wmax_i when
//                                               clip.type is LAYER_GAUSSIAN_PER_
//                                               CHANNEL, as lightning); zero
//                                               gradient where |z| > b
//   y_t = z · r_c
// and the partial outputs of a tile row are summed in float32 in the order
// c = 0, 1, ...; no bias. wmax is treated as a constant (lightning also routes
// the clamp gradient of clipped outputs into wmax and r through the bound; we
// do not). enable_during_test is not read: lightning turns it off (see
// lightning_disable_modifier_during_test).
// In layer units the output noise is out_noise·r·wmax/sqrt(C)·ξ and the ADC
// bound r·out_bound·wmax, as aihwkit-lightning.
//
// Note: lightning splits only the inputs (max_input_size). With
// mapping.max_output_size > 0 the outputs are split too and every tile of the
// grid has its own wmax; the family's default (-1) keeps lightning's result.
//
// Random numbers: tile t (row-major over the grid) draws its weight noise from
// (seed, (first_tile_id + t)·16 + 3, counter) (as AnalogCore's InferenceRPUConfig
// path) and its output noise from (seed, (first_tile_id + t)·16 + 4, counter)
// with engine/generator.h's normal(); *counter is advanced by the largest
// number of blocks any one tile used, so results are independent of threads.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <vector>

#include "engine/tensor.h"
#include "kernels/analog/lightning_law.h"
#include "layers/config/rpu_config.h"
#include "layers/tiles/split.h"

namespace aimc {

struct LightningRandom {
  std::uint64_t seed = 0;
  std::uint64_t first_tile_id = 0;
  std::uint64_t* counter = nullptr;  // Philox blocks used so far; advanced here (required)
};

// Throws ConfigError for what the lightning forward cannot run (as
// aihwkit-lightning's assertions): inp_res, out_res, out_bound or out_noise
// > 0 without an enabled input range (out_res > 0 without out_bound > 0 is
// rejected by the config's validate()).
void check_lightning_config(const TorchInferenceRPUConfig& cfg);

// aihwkit-lightning's rule at layer construction: a modifier with
// enable_during_test = true is set to false with a warning (written to
// `warnings`). Returns whether it changed cfg.
bool lightning_disable_modifier_during_test(TorchInferenceRPUConfig& cfg, std::ostream& warnings);

// The forward settings as plain numbers for a grid with tile_columns tile
// columns (the output and weight noise only when training), and whether the
// weight modifier runs (quantisation: always; noise: training).
analog::LightningLaw lightning_law(const TorchInferenceRPUConfig& cfg, bool training, std::int64_t tile_columns);
bool lightning_modifies(const TorchInferenceRPUConfig& cfg, bool training);

// x_rows [M, in] float32 -> [M, out] on the CPU or CUDA (x_rows, the tile
// weights and the input ranges on one device), differentiable w.r.t. x_rows, every
// tile weight (grid row-major, tile (r, c) of shape [out_pieces[r],
// in_pieces[c]]) and the input ranges (empty when cfg.pre_post.input_range is
// off, else one [1] per tile column). The input-range data initialisation is
// the caller's. training: output noise on, modifier on.
Tensor lightning_forward(const Tensor& x_rows, const std::vector<Tensor>& tile_weights, const TileGrid& grid,
                         const TorchInferenceRPUConfig& cfg, const std::vector<Tensor>& input_ranges, bool training,
                         const LightningRandom& random);

// The same forward fused on CUDA (kernels/cuda/lightning.cu), without autograd:
// x_rows and the tile weights contiguous float32 on the CUDA device (the input
// ranges anywhere); returns y on the device, with the modifier on the device
// (the same numbers). Equal to lightning_forward up to float
// rounding in the GEMM (which can move a quantised output by one ADC step).
Tensor lightning_forward_cuda(const Tensor& x_rows, const std::vector<Tensor>& tile_weights, const TileGrid& grid,
                              const TorchInferenceRPUConfig& cfg, const std::vector<Tensor>& input_ranges,
                              bool training, const LightningRandom& random);

}  // namespace aimc
