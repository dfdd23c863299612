// The analog matrix-vector multiply of one tile on the CPU, for a whole batch
// (REFERENCE.md section 1): noise management, bound management, DAC, the
// crossbar product (one GEMM per pass), IR drop, output-referred weight noise,
// output nonlinearity/asymmetry/noise, ADC, and the digital rescaling.
//
// Units: weights are normalised conductances, inputs and outputs are in the
// caller's units; inside a pass inputs live in ±inp_bound and outputs in
// ±out_bound.
//
//   forward : Y[N,out] = analog(W · x)   for X[N,in],  W [out,in] row-major
//   backward: D[N,in]  = analog(Wᵀ · d)  for Dout[N,out] (no bound management)
//
// Semantics not spelled out in REFERENCE.md (taken from aihwkit unless noted):
// - Resolutions: a value r > 1 means 1/r. res_in = inp_res·2·inp_bound and
//   res_out = out_res·2·out_bound (a bound <= 0 counts as 1 here and means "no
//   clipping"). Deterministic rounding is rint (half to even); stochastic is
//   rint(v/res + U − ½)·res with U uniform in (0,1).
// - DAC order: scale by 1/(α·r), quantise, clip, + inp_noise·ξ, negatives ×
//   (1 − inp_asymmetry). ADC order: nonlinearity y/(1+|n_i·y|), asymmetry,
//   + σ_i·ξ, quantise, clip.
// - Bound test: a pass fails for a row when any output reached the bound,
//   y >= out_bound (or y <= −out_bound with bm_test_negative_bound), as
//   REFERENCE.md says ("reached"); aihwkit tests y > out_bound after the ADC.
// - ITERATIVE: passes r = 1, 2, 4, ...; a row that passes is final; after the
//   pass with r > max_bm_factor or (res_in > 0 and r > max_bm_res/res_in) the
//   remaining rows keep that pass's (clipped) result. Only failed rows are
//   re-run (gathered into a smaller batch, one GEMM).
// - ITERATIVE_WORST_CASE: pass 0 as ITERATIVE; pass 1 recomputes α with
//   ABS_MAX_NP_SUM and restarts at r = 1, then r = 2, 4, ... (if the noise
//   management already is ABS_MAX_NP_SUM it is plain ITERATIVE). aihwkit
//   ignores the new α when noise management is NONE; we use it (intended).
// - SHIFT: one pass (r = 1); after the output noise each row is shifted by
//   out_bound − max_i y_i (signed maximum), then quantised and clipped; the
//   result is y·α. As in aihwkit, out_scale is NOT applied in SHIFT mode.
// - Noise management: α <= 0 with inp_noise <= 0 gives a zero output row; α
//   <= 0 with input noise runs the row unscaled (α = 1). ABS_MAX_NP_SUM uses
//   aihwkit's nm_assumed_wmax = 0.6 and, without output bound, bound 1.
//   AVERAGE_ABS_MAX (as aihwkit's CPU tile, analog::average_abs_max_scan):
//   row by row, in training and in eval, the running value v becomes
//   max|x_i| for the first row ever (v < 0: uninitialised), else
//   v·(1 − 1e-3) + 1e-3·max|x_i|, and row i uses α_i = v. The caller owns v
//   (pass a pointer; the tile keeps it in its state).
// - POS_NEG_SEPARATE: after the DAC (noise included) the input is split into
//   v⁻ = min(v,0) and v⁺ = max(v,0); each goes through the crossbar with its
//   own IR drop and weight noise (drawn separately); the two analog results
//   are summed and then go once through the ADC path (nonlinearity, noise,
//   quantisation, bound test). POS_NEG_SEPARATE_DIGITAL_SUM: each of the two
//   results goes through the ADC path on its own (own noise), and the two
//   digital results are summed; the bound test fails if either pass fails.
//   Phase 0 (see the random layout) is the negative pass, phase 1 the positive.
// - IR drop (per pass, on the DAC output v, n = input length, j = 0..n−1):
//   a_i = (n/ir_drop_g_ratio)·Σ_j|W_ij||v_j|, c_i = a_i(0.05a_i² − 0.2a_i + 0.5),
//   y_i −= ir_drop·c_i·Σ_j W_ij v_j (1 − (1 − j/n)²); then weight noise
//   ADDITIVE_CONSTANT y_i += w_noise·‖v‖₂·ξ_i or PCM_READ
//   y_i += w_noise·sqrt(Σ_j |W_ij| v_j²)·ξ_i.
// - Voltage offsets and series resistance (aihwkit's v_offset_std,
//   v_offset_w_min, r_series; on when v_offset_std > 0 or r_series > 0): per
//   pass and phase, after the IR drop and before the weight noise, on the
//   crossbar result y_i of the pass's DAC outputs v. With the reference
//   column's current y_ref = −v_offset_w_min·Σ_j v_j (0 when w_min = 0) and
//   the series-resistance compression s(c) = c/(1 + r_series·|c|) (s(c) = c
//   when r_series = 0):
//       y_i ← (1 − v_i)·s(y_i + y_ref) − (1 + v_i)·s(y_ref),
//   v_i per output line drawn once per tile as aihwkit 1.1.0 draws it: 0
//   when ξ_i <= 0, else v_offset_std·ξ'_i (ξ, ξ' independent standard
//   normals), so half the lines have no offset and the others a Gaussian
//   offset of either sign. (aihwkit's code reads max(σ·ξ, 0), but its MAX
//   macro evaluates the draw twice, so the value kept is a second draw;
//   measured against aihwkit: 49 % zeros, mean 0, std σ/√2.) Without offsets and with w_min = 0
//   this is plain y/(1 + r|y|); with w_min = −1 the compression acts on the
//   coding column's total current y + Σv (the weight W + 1 of a device
//   pair against a reference at w_min) and the reference's current is
//   subtracted after its own compression.
// - Slope calibration (slope_calibration > 0, with out_nonlinearity > 0 or
//   r_series > 0): the nonlinearity step becomes g·y/(1 + |n_i·y|) with
//   g = (1 + (mean_i n_i + r_series)·slope_calibration·out_bound)², mean over
//   the tile's output lines (out_bound <= 0 counts as 1); r_series > 0 turns
//   the step on even without a nonlinearity (n_i = 0: y ← g·y).
// - Weight read asymmetry (w_read_asymmetry_dtod, POS_NEG modes only): the
//   negative-input pass reads W_ij·a_ij, a_ij = 1 + w_read_asymmetry_dtod·ξ_ij
//   drawn once per tile for every weight (its own matrix for backward, laid
//   out like W); its IR drop and weight noise use the same W·a. The positive
//   pass reads W.
// - Per-line values (drawn once per tile by the caller, see AnalogLineValues):
//   n_i for the nonlinearity (already divided by out_bound), σ_i for the
//   output noise, v_i for the voltage offsets, a_ij for the read asymmetry,
//   and the slope-calibration gain g. Null pointers (gain <= 0) mean the
//   constant io values (an io spread > 0 without its values is an error).
//   aihwkit draws these at construction in the same way (its own generator).
//
// Random numbers: every draw is a pure function of (seed, stream, block) via
// rng::philox (kernels/random.h), so results are identical for any thread
// count and a CUDA twin can reproduce them. A call reserves
//     blocks = passes_max · N · S,   S = 2·Bi + 6·Bo,
// Bi = ceil(in_len/4), Bo = ceil(out_len/4) (in_len/out_len: the pass's input
// and output lengths, i.e. swapped for backward), passes_max =
// analog_mvm_max_passes(io) (1 for backward). Row i (its index in the
// original batch) in pass p owns the blocks starting at
//     offset + (p·N + i)·S
// laid out as: [0, Bi) DAC stochastic-rounding uniforms, [Bi, 2Bi) input
// noise normals, then for phase q = 0, 1 (the two POS_NEG passes; OnePass
// uses q = 0) at 2Bi + 3q·Bo: [0, Bo) weight-noise normals, [Bo, 2Bo) output
// noise normals, [2Bo, 3Bo) ADC stochastic-rounding uniforms. Value j of a
// range comes from block j/4, word j%4: a uniform is rng::uniform_open(word);
// normals come from rng::box_muller_fast (kernels/random_normal.h) on words
// (0,1) and (2,3). The whole reservation counts as consumed whatever the
// data; advance the offset by AnalogMvmStats::blocks after each call.
#pragma once

#include <cstdint>

#include "kernels/analog/io_parameters.h"

namespace aimc::cpu {

// The stream a call draws from (see the scheme above).
struct AnalogRandom {
  std::uint64_t seed = 0;
  std::uint64_t stream = 0;
  std::uint64_t offset = 0;  // first Philox block of this call
};

// Per-output-line values of the pass's output lines (out for forward, in for
// backward), drawn once per tile. nullptr: use the constant io values.
struct AnalogLineValues {
  const float* out_nonlinearity = nullptr;  // n_i = out_nonlinearity/out_bound·(1+std·ξ_i)
  const float* out_noise = nullptr;         // σ_i = |out_noise·(1 + out_noise_std·ξ_i)|
  const float* v_offset = nullptr;          // v_i: 0 if ξ_i <= 0, else v_offset_std·ξ'_i
  const float* w_asymmetry = nullptr;       // a_ij = 1 + w_read_asymmetry_dtod·ξ_ij, [out_size, in_size] like W
  // Slope-calibration gain g (analog_slope_gain of the n_i above); <= 0:
  // computed from the constant io values (an error with a nonlinearity spread).
  float slope_gain = 0.f;
};

struct AnalogMvmStats {
  std::uint64_t blocks = 0;  // Philox blocks reserved (advance the offset by this)
  int passes = 0;            // bound-management passes run (0 if nothing ran)
};

// Largest number of bound-management passes a forward call can run for io.
int analog_mvm_max_passes(const IOParameters& io);

// Y[n,out_size] = analog(W·x) row by row for X[n,in_size]. W is [out_size,
// in_size] row-major; y must not overlap x. nm_running is the AVERAGE_ABS_MAX
// running value (read and updated by every call, training or eval, as aihwkit's
// CPU tile; < 0 means uninitialised);
// it may be null for the other modes. Throws ShapeError/ValueError on bad
// sizes, null data, or a per-line spread without per-line values.
AnalogMvmStats analog_mvm_forward(const IOParameters& io, const float* w, std::int64_t out_size,
                                  std::int64_t in_size, const float* x, std::int64_t n, float* y,
                                  const AnalogLineValues& lines, const AnalogRandom& random,
                                  float* nm_running = nullptr);

// D[n,in_size] = analog(Wᵀ·d) for Dout[n,out_size], with the backward
// IOParameters; bound management is ignored. lines are per input line of W.
AnalogMvmStats analog_mvm_backward(const IOParameters& io, const float* w, std::int64_t out_size,
                                   std::int64_t in_size, const float* d, std::int64_t n, float* dx,
                                   const AnalogLineValues& lines, const AnalogRandom& random,
                                   float* nm_running = nullptr);

// Draws the per-line values for `lines` output lines from (seed, stream,
// blocks offset .. offset+ceil(lines/4)·4, normals as above): nonlinearity[i] =
// |out_nonlinearity/out_bound·(1+out_nonlinearity_std·ξ_i)| (bound <= 0 counts
// as 1), noise[i] = |out_noise·(1+out_noise_std·ξ'_i)| and v_offset[i] =
// (v_offset_std·ξ''_i > 0 ? v_offset_std·ξ'''_i : 0) (ξ, ξ', ξ'', ξ''' from
// consecutive ranges of ceil(lines/4) blocks). Any output may be null.
// Returns the blocks used.
std::uint64_t draw_analog_line_values(const IOParameters& io, std::int64_t lines, const AnalogRandom& random,
                                      float* nonlinearity, float* noise, float* v_offset = nullptr);

// Draws the read-asymmetry factors a_k = 1 + w_read_asymmetry_dtod·ξ_k of the
// `count` weights (W's layout) from blocks offset .. offset+ceil(count/4).
// Returns the blocks used.
std::uint64_t draw_weight_read_asymmetry(const IOParameters& io, std::int64_t count, const AnalogRandom& random,
                                         float* factors);

// The slope-calibration gain g of the docs above for the tile's per-line
// nonlinearities n[0..lines) (null: the constant io value): 1 when
// slope_calibration <= 0 or neither out_nonlinearity > 0 nor r_series > 0.
float analog_slope_gain(const IOParameters& io, const float* nonlinearity, std::int64_t lines);

}  // namespace aimc::cpu
