// The analog MVM periphery shared by the CPU (kernels/cpu/analog_mvm.cpp) and
// CUDA (kernels/cuda/analog_mvm.cu) implementations: the IOParameters resolved
// into plain numbers, the Philox block layout of a call, and the per-element
// DAC / crossbar / ADC formulas as AIMC_HD functions, so both devices run the
// same code (see kernels/cpu/analog_mvm.h for the model and the layout).
// Units: inputs in ±inp_bound, outputs in ±out_bound inside a pass.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/analog/io_parameters.h"
#include "kernels/cpu/analog_mvm.h"
#include "kernels/cpu/gemm.h"
#include "kernels/random.h"

namespace aimc::analog {

constexpr float kNmAssumedWmax = 0.6f;  // aihwkit's nm_assumed_wmax
constexpr float kNmDecay = 1e-3f;       // aihwkit's nm_decay
constexpr int kPassLimit = 64;          // hard cap on bound-management passes

// std::min(std::max(v, lo), hi) spelled out, so host and device agree on NaN.
AIMC_HD float clamp_value(float v, float lo, float hi) {
  const float t = v < lo ? lo : v;
  return hi < t ? hi : t;
}
AIMC_HD float max_value(float a, float b) { return a < b ? b : a; }

// IOParameters resolved into the numbers the loops use (plain data: copied
// into CUDA kernels by value).
struct Periphery {
  NoiseManagementType nm;
  BoundManagementType bm;
  AnalogMVType mv;
  float nm_thres;
  float inp_bound, res_in, inp_noise, inp_asym;
  bool inp_sto, has_inp_asym;
  float out_bound, out_bound_one, res_out, out_noise, out_asym, out_scale;
  bool out_sto, has_out_asym, test_neg, has_nl, has_noise;
  float max_bm_factor, max_bm_res;
  WeightNoiseType wn;
  float w_noise, ir_drop, ir_g_ratio;
  const float* nl;  // per output line, or null: nl_const
  float nl_const;
  float nl_gain;       // slope-calibration gain g (1 without calibration)
  const float* sigma;  // per output line, or null: out_noise
  // Voltage offsets / series resistance (kernels/cpu/analog_mvm.h).
  bool has_voffset;
  float r_series;       // max(r_series, 0)
  float ref_scale;      // −v_offset_w_min: y_ref = ref_scale·Σ_j v_j
  const float* v_offset;  // per output line, or null: 0
  const float* w_asym;    // read asymmetry [out_size, in_size] (POS_NEG only), or null: none
  // The pass structure derived from bm and mv (see kernels/cpu/analog_mvm.h).
  bool iterative;    // ITERATIVE or ITERATIVE_WORST_CASE
  bool worst_case;   // ITERATIVE_WORST_CASE with another NM than ABS_MAX_NP_SUM
  bool shift;        // SHIFT
  bool pos_neg;      // POS_NEG_SEPARATE(_DIGITAL_SUM)
  bool digital_sum;  // POS_NEG_SEPARATE_DIGITAL_SUM
  float final_gain;  // out_scale (1 in SHIFT mode, as aihwkit)
};

// Resolves io for a forward (backward = false) or backward pass. lines: the
// per-line values (pointers may be null). Throws ValueError for a per-line
// spread without per-line values and for ir_drop without a positive g ratio.
// Defined in kernels/cpu/analog_mvm.cpp.
Periphery resolve_periphery(const IOParameters& io, const cpu::AnalogLineValues& lines, bool backward);

// Throws ShapeError / ValueError for bad sizes or null data (`what` names the
// call). Defined in kernels/cpu/analog_mvm.cpp.
void check_mvm_sizes(const char* what, std::int64_t out_size, std::int64_t in_size, std::int64_t n, const float* w,
                     const float* a, const float* b);

// A per-line value |base·(1 + spread·z)| (nonlinearity or output-noise σ).
AIMC_HD float line_value(float base, float spread, float z) { return std::fabs(base * (1.f + spread * z)); }
// A line's voltage offset as aihwkit 1.1.0 draws it: 0 unless std·z > 0,
// then std·z2 (a second, independent normal; see kernels/cpu/analog_mvm.h).
AIMC_HD float voltage_offset_line(float std, float z, float z2) { return std * z > 0.f ? std * z2 : 0.f; }
// A weight's read-asymmetry factor 1 + dtod·z (negative-input pass).
AIMC_HD float read_asymmetry_factor(float dtod, float z) { return 1.f + dtod * z; }

// Input step of the DAC (0: no quantisation); a resolution r > 1 means 1/r.
AIMC_HD float resolution(float r) { return r > 1.f ? 1.f / r : r; }
AIMC_HD float bound_or_one(float b) { return b > 0.f ? b : 1.f; }
AIMC_HD bool is_iterative(BoundManagementType bm) {
  return bm == BoundManagementType::Iterative || bm == BoundManagementType::IterativeWorstCase;
}

// Philox blocks of one call (kernels/cpu/analog_mvm.h, "Random numbers").
struct MvmLayout {
  std::uint64_t seed, stream, offset;
  std::uint64_t n, bi, bo, slot;
  AIMC_HD std::uint64_t base(int pass, std::int64_t row) const {
    return offset + (static_cast<std::uint64_t>(pass) * n + static_cast<std::uint64_t>(row)) * slot;
  }
  AIMC_HD std::uint64_t inp_round(int pass, std::int64_t row) const { return base(pass, row); }
  AIMC_HD std::uint64_t inp_noise(int pass, std::int64_t row) const { return base(pass, row) + bi; }
  // kind 0: weight noise, 1: output noise, 2: ADC rounding.
  AIMC_HD std::uint64_t out(int pass, std::int64_t row, int phase, int kind) const {
    return base(pass, row) + 2 * bi + static_cast<std::uint64_t>(3 * phase + kind) * bo;
  }
};

AIMC_HD MvmLayout make_mvm_layout(std::uint64_t seed, std::uint64_t stream, std::uint64_t offset, std::int64_t n,
                                  std::int64_t in_len, std::int64_t out_len) {
  MvmLayout l{};
  l.seed = seed;
  l.stream = stream;
  l.offset = offset;
  l.n = static_cast<std::uint64_t>(n);
  l.bi = static_cast<std::uint64_t>((in_len + 3) / 4);
  l.bo = static_cast<std::uint64_t>((out_len + 3) / 4);
  l.slot = 2 * l.bi + 6 * l.bo;
  return l;
}

// The crossbar of a pass: Y = V·Wᵀ (forward) or V·W (backward, transposed)
// for rows of V, W [out_size, in_size] row-major. Host code.
struct CrossbarShape {
  std::int64_t out_size, in_size;
  bool transposed;
  std::int64_t in_len() const { return transposed ? out_size : in_size; }
  std::int64_t out_len() const { return transposed ? in_size : out_size; }
  // The GEMM Y[rows, out_len] = V[rows, in_len]·op(M) for M laid out like W.
  cpu::GemmShape gemm(std::int64_t rows) const {
    return transposed ? cpu::gemm_shape(false, false, rows, in_size, out_size)
                      : cpu::gemm_shape(false, true, rows, out_size, in_size);
  }
};

// The float GEMM of a device (cpu::gemm or cuda::gemm: the same arguments).
using GemmFunction = void (*)(const cpu::GemmShape&, float, const float*, const float*, float, float*);

// The crossbar with its weights w, multiplying through the device's GEMM.
template <GemmFunction Gemm>
struct Crossbar : CrossbarShape {
  const float* w;
  // Y[rows, out_len] = V[rows, in_len]·op(mat), mat laid out like w.
  void product(const float* mat, const float* v, std::int64_t rows, float* y) const {
    if (rows > 0) Gemm(gemm(rows), 1.f, v, mat, 0.f, y);
  }
  // As product for the rows of both phases: the first m rows (negative
  // pass) read neg, the rest read mat (one GEMM when they are the same).
  void product_phases(const float* neg, const float* mat, const float* v, std::int64_t rows, std::int64_t m,
                      float* y) const {
    if (neg == mat) {
      product(mat, v, rows, y);
      return;
    }
    product(neg, v, m, y);
    product(mat, v + m * in_len(), rows - m, y + m * out_len());
  }
};

// The DAC input scale of a row in a pass: 1/α (when α is used and > 0), /r
// in the iterative modes.
AIMC_HD float dac_scale(const Periphery& p, float alpha, bool use_alpha, float r) {
  float s = 1.f;
  if (use_alpha && alpha > 0.f) s /= alpha;
  if (p.iterative) s /= r;
  return s;
}

// Whether pass `pass` (input reduction r) is the last bound-management pass:
// rows that still fail keep its clipped result.
AIMC_HD bool bm_last_pass(const Periphery& p, int pass, int passes_max, float r) {
  return !p.iterative || pass + 1 >= passes_max || r > p.max_bm_factor ||
         (p.res_in > 0.f && r > p.max_bm_res / p.res_in);
}

// The statistics of an input row that the noise managements use.
struct RowStats {
  float abs_max = 0.f;  // max |x_j|
  float max = 0.f;      // max x_j
  float psum = 0.f;     // Σ max(x_j, 0), in input order
  float nsum = 0.f;     // Σ min(x_j, 0), in input order
};

// α from a row's statistics (AVERAGE_ABS_MAX returns the caller's running
// value `average`).
AIMC_HD float noise_management_from_stats(NoiseManagementType type, const Periphery& p, const RowStats& s,
                                          float average) {
  const float thres = p.nm_thres;
  if (type == NoiseManagementType::None) return 1.f;
  if (type == NoiseManagementType::Constant) return thres > 0.f ? thres : 1.f;
  if (type == NoiseManagementType::AverageAbsMax) return average;
  if (type == NoiseManagementType::Max) return thres > 0.f ? (thres < s.max ? thres : s.max) : s.max;
  const float a = thres > 0.f ? (thres < s.abs_max ? thres : s.abs_max) : s.abs_max;
  if (type == NoiseManagementType::AbsMax) return a;
  // ABS_MAX_NP_SUM
  float npsum = max_value(s.psum, -s.nsum) * kNmAssumedWmax / p.out_bound_one;
  if (p.res_in > 0.f) {
    const float cap = a * p.max_bm_res / p.res_in;
    npsum = npsum < cap ? npsum : cap;
  }
  return max_value(a, npsum);
}

// AVERAGE_ABS_MAX, as aihwkit's CPU tile computes it: the running mean of
// max|x| is updated by every input row in batch order, in training and in
// eval alike, and each row is scaled by the value it just produced:
//   r ← max|x_i| for the first row ever (r < 0: never set), else
//   r ← r·(1 − kNmDecay) + kNmDecay·max|x_i|;   α_i = r.
// abs_max[i] holds max|x_i| on entry and α_i on return; *running is carried
// in the tile state (so a saved model continues exactly). Serial over rows:
// n multiply-adds, the same bits on every device and thread count.
inline void average_abs_max_scan(float* abs_max, std::int64_t n, float* running) {
  float r = *running;
  for (std::int64_t i = 0; i < n; ++i) {
    const float a = abs_max[i];
    r = r < 0.f ? a : r * (1.f - kNmDecay) + kNmDecay * a;
    abs_max[i] = r;
  }
  *running = r;
}

// Σ max(x_j, 0) and Σ min(x_j, 0) over x[0..len) in input order.
AIMC_HD void signed_sums(const float* x, std::int64_t len, float& psum, float& nsum) {
  psum = 0.f;
  nsum = 0.f;
  for (std::int64_t j = 0; j < len; ++j) {
    psum += x[j] > 0.f ? x[j] : 0.f;
    nsum += x[j] < 0.f ? x[j] : 0.f;
  }
}

// α of one row x[0..len), computing only the statistics `type` needs.
AIMC_HD float noise_management_scale(NoiseManagementType type, const Periphery& p, const float* x, std::int64_t len,
                                     float average) {
  RowStats s;
  if (type == NoiseManagementType::Max) {
    s.max = x[0];
    for (std::int64_t j = 1; j < len; ++j) s.max = max_value(s.max, x[j]);
  }
  if (type == NoiseManagementType::AbsMax || type == NoiseManagementType::AbsMaxNPSum)
    for (std::int64_t j = 0; j < len; ++j) s.abs_max = max_value(s.abs_max, std::fabs(x[j]));
  if (type == NoiseManagementType::AbsMaxNPSum) signed_sums(x, len, s.psum, s.nsum);
  return noise_management_from_stats(type, p, s, average);
}

// DAC of one input: v = x·scale, quantise (u: the stochastic-rounding
// uniform), clip to ±bound, + noise·z, negatives × asym. The flags are
// constants in the CPU's vectorised loops.
AIMC_HD float dac_value(float x, float scale, float res, float bound, float noise, float asym, float u, float z,
                        bool quantise, bool stochastic, bool with_noise, bool asymmetric) {
  float value = x * scale;
  if (quantise) {
    float q = value / res;
    if (stochastic) q += u - 0.5f;
    value = std::rint(q) * res;
  }
  value = clamp_value(value, -bound, bound);
  if (with_noise) value += noise * z;
  if (asymmetric) value = value < 0.f ? value * asym : value;
  return value;
}

// The analog part of the output path: nonlinearity g·y/(1 + |n·y|) (g: the
// slope-calibration gain), asymmetry, + σ·z.
AIMC_HD float adc_analog(float y, float nl, float gain, float asym, float sigma, float z, bool nonlinear,
                         bool asymmetric, bool noise) {
  float value = y;
  if (nonlinear) value = gain * value / (1.f + std::fabs(nl * value));
  if (asymmetric) value = value < 0.f ? value * asym : value;
  if (noise) value += sigma * z;
  return value;
}

// ADC quantisation (u: the stochastic-rounding uniform) before the bound test.
AIMC_HD float adc_quantise(float value, float res, float u, bool quantise, bool stochastic) {
  if (!quantise) return value;
  float q = value / res;
  if (stochastic) q += u - 0.5f;
  return std::rint(q) * res;
}

// The bound test on a quantised output: reached +bound, or −bound when
// neg_test = −bound (−inf otherwise).
// (| rather than ||: no branch, so the CPU loop vectorises.)
AIMC_HD bool adc_reached(float q, float bound, float neg_test) {
  return static_cast<bool>(static_cast<int>(q >= bound) | static_cast<int>(q <= neg_test));
}

// IR drop: the ramp weight 1 − (1 − j/n)² of input j of n, and the correction
// factor c(a) = a(0.05a² − 0.2a + 0.5) of a = (n/g_ratio)·Σ|W||v|.
AIMC_HD float ir_drop_ramp(std::int64_t j, std::int64_t n) {
  const float q = 1.f - static_cast<float>(j) / static_cast<float>(n);
  return 1.f - q * q;
}
AIMC_HD float ir_drop_factor(float a) { return a * (a * (0.05f * a - 0.2f) + 0.5f); }

// Voltage offset v_i and series resistance r on a line's crossbar result y,
// against the reference column's current y_ref (kernels/cpu/analog_mvm.h):
// (1 − v_i)·s(y + y_ref) − (1 + v_i)·s(y_ref), s(c) = c/(1 + r|c|). Without
// r it is the same as (1 − v_i)·y − 2·v_i·y_ref, computed so (as aihwkit's
// CPU does): exact y on a line without offset.
AIMC_HD float series_compress(float c, float r) { return c / (1.f + std::fabs(r * c)); }
AIMC_HD float voltage_offset_value(float y, float v, float y_ref, float r) {
  if (!(r > 0.f)) return (1.f - v) * y - 2.f * v * y_ref;
  return (1.f - v) * series_compress(y + y_ref, r) - (1.f + v) * series_compress(y_ref, r);
}

}  // namespace aimc::analog
