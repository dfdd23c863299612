// Hardware-aware-training weight transforms on one tile's weights: the weight
// modifier (noise / quantisation for the training forward), the weight clipper
// (after each optimizer step) and the weight remapper (into the conductance
// range, with per-row output scales). REFERENCE.md §4; semantics follow
// aihwkit's RPUCuda WeightModifier / WeightClipper / WeightRemapper.
//
// Weights are float32 [out, in] on the CPU, or contiguous on CUDA (then the
// CUDA twins of kernels/cuda/weight_transforms.cu run, with the same random
// layout and the same per-element math), in normalised units. These are
// plain functions on stored tensors: no autograd is recorded (call them under
// NoGradGuard or on detached weights).
//
// Random numbers: every draw is rng::philox(seed, stream, counter + k) for a
// block index k fixed by the element index and the transform, so the result is
// bitwise identical for any thread count. The blocks used by one call are the
// consecutive sections below (each present only when that step draws):
//   1. stochastic rounding (sto_round, discretising types): ceil(n/4) blocks,
//      element i uses word i%4 of block i/4 as a uniform;
//   2. Gaussian noise (ADD_NORMAL*, MULT_NORMAL, DISCRETIZE_ADD_NORMAL*, POLY,
//      PROG_NOISE, when std_dev > 0): ceil(n/4) blocks, element i gets normal
//      i%4 of rng::box_muller_fast on the word pairs (0,1), (2,3) of block i/4;
//   3. PCM_NOISE: 2 blocks per element (block 2i: box_muller_fast on words
//      (0,1) gives the programming and drift normals, on (2,3) the read
//      normal; block 2i+1: uniforms for reset, g_max hit, g_max sign, random
//      hit, the random conductance being g_max·u/pcm_prob_at_random);
//   4. drop connect (pdrop > 0): ceil(n/4) blocks, one uniform per element.
// The caller advances its counter by *blocks_used.
#pragma once

#include <cstdint>

#include "engine/tensor.h"
#include "kernels/analog/weight_transform_law.h"
#include "layers/config/weight_clip.h"
#include "layers/config/weight_modifier.h"
#include "layers/config/weight_remap.h"

namespace aimc {

// Returns a NEW float32 [out, in] tensor with the modified weights; `w` is
// never changed. a = max|W| (rows for the *_PER_CHANNEL types; the last column
// excluded when copy_last_column; 1 if that maximum is 0) when
// rel_to_actual_wmax, else assumed_wmax. ξ ~ N(0, 1), u ~ U(0, 1).
//   NONE, COPY, DROP_CONNECT: copy.
//   DISCRETIZE(_PER_CHANNEL): w' = a·res·round(w/a/res) (sto_round: round(v + u − ½)).
//   ADD_NORMAL(_PER_CHANNEL): w' = w + std_dev·a·ξ.
//   MULT_NORMAL: w' = w·(1 + std_dev·a·ξ) (REFERENCE.md: with a, as RPUCuda).
//   DISCRETIZE_ADD_NORMAL(_PER_CHANNEL): discretise, then + std_dev·a·ξ.
//   POLY: w' = w + a·std_dev·(c0 + c1·|w|/a + c2·(|w|/a)² + ...)·ξ.
//   PROG_NOISE: as POLY with std_dev/g_max instead of std_dev, and w' keeps
//     the sign of w (w' = ±|w + noise|; w = 0 gives w' >= 0).
//   DOREFA: w' = res·round(tanh(w)·|dorefa_clip/tanh(a)|/res) (not rescaled by a).
//   PCM_NOISE: w is clipped to ±a and mapped to g = w·g_max/a (µS) and
//     given the programming noise (0.26348 + 1.9650·g_r − 1.1731·g_r²)·std_dev
//     µS (no g_max/25 rescaling, as aihwkit's modifier), drift-exponent
//     variation only (ν = |σ_ν·ξ|, no mean drift) when pcm_t_inference > 0 and
//     read noise at t = pcm_t_inference + pcm_t0; reset / g_max / random
//     device faults with the pcm_prob_* probabilities; |g| <= pcm_zero_thres ·
//     std_dev·0.26348 programs 0; w' keeps the sign of w (see the .cpp).
// Then drop connect for every type: w' = 0 with probability pdrop. With
// copy_last_column the last column is left exactly as in w. per_batch_sample
// is the caller's business (call once per sample with different counters).
// The result is on w's device. Throws ShapeError unless w is 2-D, ValueError
// unless float32, DeviceError for a non-contiguous CUDA w or a failed CUDA
// call, ConfigError (naming the field) for invalid parameters (also for more
// than 16 coeffs with POLY / PROG_NOISE).
// blocks_used (may be null) receives the number of Philox blocks drawn.
Tensor apply_weight_modifier(const Tensor& w, const WeightModifierParameter& p, std::uint64_t seed,
                             std::uint64_t stream, std::uint64_t counter, std::uint64_t* blocks_used);

// Clips w in place (float32 [out, in], CPU or contiguous CUDA). Clip value c:
//   NONE: no clipping; FIXED_VALUE: c = fixed_value;
//   LAYER_GAUSSIAN: c = sigma·std(W) (unbiased, n − 1; aihwkit);
//   AVERAGE_CHANNEL_MAX: c = mean over rows of the row max|W|;
//   LAYER_GAUSSIAN_PER_CHANNEL: per row c_r = sigma·std(row) (unbiased).
// For the non-fixed types fixed_value > 0 caps c (aihwkit). w = clamp(w, −c, c)
// only where c > 0.
void apply_weight_clip_(Tensor& w, const WeightClipParameter& p);

// Remaps w in place and updates the per-row output scales (float32 [out]; the
// effective weights are scales[r]·w[r, :], the caller multiplies the scales
// into the outputs), as aihwkit's WeightRemapper:
//   LAYERWISE_SYMMETRIC: m = max|W|/remapped_wmax; if m > 0: W /= m, scales *= m.
//   CHANNELWISE_SYMMETRIC, max_scale_range == 0: per row m_r = max|W_r|/
//     remapped_wmax (1 if 0); W_r /= m_r, scales[r] *= m_r.
//   CHANNELWISE_SYMMETRIC, max_scale_range > 0 (needs remapped_wmax == 1):
//     s_min = max(min_r scales[r], 0), raised to max_scale_ref when both are
//     > 0; new_r = max|W_r|·scales[r] (scales[r] if the row is 0), capped at
//     s_min·max_scale_range when s_min > 0; W_r *= scales[r]/new_r (rows with
//     new_r == 0 unchanged); scales[r] = new_r.
// scales must be on w's device (contiguous on CUDA; then the row maxima and
// the scaling run on the GPU, the per-row factors on the host).
// Throws ShapeError if scales is not [out], ConfigError for bad parameters,
// DeviceError for scales on another device.
void apply_weight_remap_(Tensor& w, Tensor& scales, const WeightRemapParameter& p);

// The plain-data laws the CPU code and the CUDA kernels share
// (kernels/analog/weight_transform_law.h). make_modifier_law throws
// ConfigError when POLY / PROG_NOISE have no coeffs or more than
// ModifierLaw::kMaxCoeffs (16).
ModifierLaw make_modifier_law(const WeightModifierParameter& p);
RemapLaw make_remap_law(const WeightRemapParameter& p);

}  // namespace aimc
