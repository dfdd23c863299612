// Batched analog MVM on the CPU: the periphery loops (noise management, DAC,
// ADC, bound test) run per row in parallel; the crossbar product of every pass
// is one GEMM over all rows still in play. See analog_mvm.h for the model and
// the random-number layout.
#include "kernels/cpu/analog_mvm.h"

#include "kernels/analog/periphery.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/error.h"
#include "kernels/cpu/abs_max.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/random_fill.h"
#include "kernels/random.h"
#include "kernels/random_normal.h"

namespace aimc::cpu {
namespace {

using analog::bound_or_one;
using analog::clamp_value;
using analog::is_iterative;
using analog::kNmDecay;
using analog::kPassLimit;
using analog::MvmLayout;
using analog::noise_management_scale;
using analog::Periphery;
using analog::resolution;

constexpr float kInf = std::numeric_limits<float>::infinity();

float step_in(const IOParameters& io) {
  const float r = resolution(io.inp_res);
  return r > 0.f ? r * 2.f * bound_or_one(io.inp_bound) : 0.f;
}

Periphery resolve(const IOParameters& io, const AnalogLineValues& lines, bool backward) {
  return analog::resolve_periphery(io, lines, backward);
}

// ---- random draws (see the layout in analog_mvm.h) ----

using Layout = MvmLayout;

AnalogRandom layout_random(const Layout& l) { return AnalogRandom{l.seed, l.stream, l.offset}; }

Layout make_layout(const AnalogRandom& rnd, std::int64_t n, std::int64_t in_len, std::int64_t out_len) {
  return analog::make_mvm_layout(rnd.seed, rnd.stream, rnd.offset, n, in_len, out_len);
}

void draw_normals(const AnalogRandom& r, std::uint64_t block, std::int64_t count, float* z) {
  fill_normal(r.seed, r.stream, block, count, z);
}

// Normals for rows k0..k1 of a pass, `count` each, row k from block
// first(k): one fill_normal_rows call (same bits as row by row).
template <class First>
std::vector<float> chunk_normals(const AnalogRandom& r, std::int64_t k0, std::int64_t k1, std::int64_t count,
                                 First first) {
  std::vector<std::uint64_t> firsts(static_cast<std::size_t>(k1 - k0));
  for (std::int64_t k = k0; k < k1; ++k) firsts[k - k0] = first(k);
  std::vector<float> z(static_cast<std::size_t>((k1 - k0) * count));
  fill_normal_rows(r.seed, r.stream, firsts.data(), k1 - k0, count, z.data());
  return z;
}

void draw_uniforms(const AnalogRandom& r, std::uint64_t block, std::int64_t count, float* u) {
  fill_uniform(r.seed, r.stream, block, count, u);
}

// ---- per-row periphery ----

// DAC: v = x·scale, quantise, clip, + noise, asymmetry. u: rounding uniforms,
// z: input-noise normals (each used only when its flag is set). The flags are
// template parameters so every variant is one branch-free, vectorised loop.
template <bool Quantise, bool Stochastic, bool Noise, bool Asymmetry>
void dac_loop(const float* x, std::int64_t len, float scale, float res, float bound, float noise, float asym,
              const float* u, const float* z, float* v) {
  for (std::int64_t j = 0; j < len; ++j)
    v[j] = analog::dac_value(x[j], scale, res, bound, noise, asym, Stochastic ? u[j] : 0.f, Noise ? z[j] : 0.f,
                             Quantise, Stochastic, Noise, Asymmetry);
}

void dac_row(const Periphery& p, const float* x, std::int64_t len, float scale, const float* u, const float* z,
             float* v) {
  using Fn = void (*)(const float*, std::int64_t, float, float, float, float, float, const float*, const float*,
                      float*);
  static constexpr Fn table[16] = {
      dac_loop<false, false, false, false>, dac_loop<false, false, false, true>, dac_loop<false, false, true, false>,
      dac_loop<false, false, true, true>,   dac_loop<false, true, false, false>, dac_loop<false, true, false, true>,
      dac_loop<false, true, true, false>,   dac_loop<false, true, true, true>,   dac_loop<true, false, false, false>,
      dac_loop<true, false, false, true>,   dac_loop<true, false, true, false>,  dac_loop<true, false, true, true>,
      dac_loop<true, true, false, false>,   dac_loop<true, true, false, true>,   dac_loop<true, true, true, false>,
      dac_loop<true, true, true, true>};
  const int quantise = p.res_in > 0.f, sto = quantise && u, noise = z != nullptr, asym = p.has_inp_asym;
  table[quantise * 8 + sto * 4 + noise * 2 + asym](x, len, scale, p.res_in, p.inp_bound, p.inp_noise, p.inp_asym,
                                                   u, z, v);
}

// Everything the ADC loop of one row reads.
struct AdcArgs {
  const float* nl;     // per-line nonlinearity
  float gain;          // slope-calibration gain
  const float* sigma;  // per-line output-noise σ
  const float* z;      // output-noise normals
  const float* u;      // ADC rounding uniforms
  float asym, res, bound, neg_test;  // neg_test: −bound, or −inf without the negative test
};

// Output path of one row: nonlinearity, asymmetry, + σ·ξ, then (unless the
// shift mode defers it) ADC quantisation, clipping and the bound test.
// Returns 1 when some output reached the bound.
template <bool Nonlinear, bool Asymmetry, bool Noise, bool Quantise, bool Stochastic, bool Clip>
int adc_loop(const AdcArgs& a, float* y, std::int64_t len) {
  const float* nl = a.nl;
  const float* sigma = a.sigma;
  const float* z = a.z;
  const float* u = a.u;
  const float asym = a.asym, res = a.res, bound = a.bound, neg_test = a.neg_test, gain = a.gain;
  int failed = 0;
  for (std::int64_t i = 0; i < len; ++i) {
    float value = analog::adc_analog(y[i], Nonlinear ? nl[i] : 0.f, gain, asym, Noise ? sigma[i] : 0.f,
                                     Noise ? z[i] : 0.f, Nonlinear, Asymmetry, Noise);
    if constexpr (Clip) {
      value = analog::adc_quantise(value, res, Stochastic ? u[i] : 0.f, Quantise, Stochastic);
      failed |= static_cast<int>(analog::adc_reached(value, bound, neg_test));
      value = clamp_value(value, -bound, bound);
    }
    y[i] = value;
  }
  return failed;
}

template <bool Nonlinear, bool Asymmetry, bool Noise>
int adc_dispatch(const AdcArgs& a, float* y, std::int64_t len, bool quantise, bool stochastic, bool clip) {
  if (!clip) return adc_loop<Nonlinear, Asymmetry, Noise, false, false, false>(a, y, len);
  if (!quantise) return adc_loop<Nonlinear, Asymmetry, Noise, false, false, true>(a, y, len);
  if (!stochastic) return adc_loop<Nonlinear, Asymmetry, Noise, true, false, true>(a, y, len);
  return adc_loop<Nonlinear, Asymmetry, Noise, true, true, true>(a, y, len);
}

// Output path of one row (see adc_loop); z: output-noise normals (or null),
// u: ADC rounding uniforms (or null), sigma/nl: per-line values. SHIFT mode:
// after the noise the row moves so that its largest output sits at the
// positive bound, then the ADC runs (no bound test). Returns true when the
// bound test passed.
bool adc_row(const Periphery& p, const float* nl, const float* sigma, float* y, std::int64_t len, const float* z,
             const float* u, bool shift) {
  AdcArgs a{nl, p.nl_gain, sigma, z, u, p.out_asym, p.res_out, p.out_bound, p.test_neg ? -p.out_bound : -kInf};
  const bool quantise = p.res_out > 0.f, stochastic = quantise && u != nullptr;
  auto run = [&](bool clip) {
    const int key = (p.has_nl ? 4 : 0) + (p.has_out_asym ? 2 : 0) + (z ? 1 : 0);
    switch (key) {
      case 0: return adc_dispatch<false, false, false>(a, y, len, quantise, stochastic, clip);
      case 1: return adc_dispatch<false, false, true>(a, y, len, quantise, stochastic, clip);
      case 2: return adc_dispatch<false, true, false>(a, y, len, quantise, stochastic, clip);
      case 3: return adc_dispatch<false, true, true>(a, y, len, quantise, stochastic, clip);
      case 4: return adc_dispatch<true, false, false>(a, y, len, quantise, stochastic, clip);
      case 5: return adc_dispatch<true, false, true>(a, y, len, quantise, stochastic, clip);
      case 6: return adc_dispatch<true, true, false>(a, y, len, quantise, stochastic, clip);
      default: return adc_dispatch<true, true, true>(a, y, len, quantise, stochastic, clip);
    }
  };
  if (!shift) return run(true) == 0;
  run(false);
  float m = y[0];
  for (std::int64_t i = 1; i < len; ++i) m = std::max(m, y[i]);
  const float offset = p.out_bound < kInf ? p.out_bound - m : 0.f;
  for (std::int64_t i = 0; i < len; ++i) y[i] += offset;
  AdcArgs b = a;
  b.neg_test = -kInf;
  b.bound = p.out_bound;
  if (!quantise) adc_loop<false, false, false, false, false, true>(b, y, len);
  else if (!stochastic) adc_loop<false, false, false, true, false, true>(b, y, len);
  else adc_loop<false, false, false, true, true, true>(b, y, len);
  return true;
}

using Crossbar = analog::Crossbar<&cpu::gemm>;

// The weights the crossbar reads: W and |W|, and for the negative-input pass
// (POS_NEG with read asymmetry) W·a and |W·a|; the negative ones alias W's
// otherwise. abs only when `need_abs`.
struct CrossbarWeights {
  std::vector<float> abs_w, w_neg, abs_w_neg;
  const float *neg = nullptr, *abs_pos = nullptr, *abs_neg = nullptr;
  CrossbarWeights(const Periphery& p, const Crossbar& cb, bool need_abs) {
    const std::size_t count = static_cast<std::size_t>(cb.out_size * cb.in_size);
    neg = cb.w;
    if (p.pos_neg && p.w_asym) {
      w_neg.resize(count);
      for (std::size_t k = 0; k < count; ++k) w_neg[k] = cb.w[k] * p.w_asym[k];
      neg = w_neg.data();
    }
    if (!need_abs) return;
    abs_w.resize(count);
    for (std::size_t k = 0; k < count; ++k) abs_w[k] = std::fabs(cb.w[k]);
    abs_pos = abs_neg = abs_w.data();
    if (!w_neg.empty()) {
      abs_w_neg.resize(count);
      for (std::size_t k = 0; k < count; ++k) abs_w_neg[k] = std::fabs(w_neg[k]);
      abs_neg = abs_w_neg.data();
    }
  }
};

std::int64_t row_grain(std::int64_t rows, std::int64_t len) {
  return grain_for(rows, std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(len, 1)));
}

// IR drop, voltage offsets and weight noise on Y[rows,out_len] from
// V[rows,in_len]. Row k belongs to batch row ids[k % m] and phase k / m.
void apply_crossbar_effects(const Periphery& p, const Crossbar& cb, const CrossbarWeights& cw, const float* v,
                            std::int64_t rows, std::int64_t m, const std::int64_t* ids, int pass,
                            const Layout& layout, float* y) {
  const std::int64_t in_len = cb.in_len(), out_len = cb.out_len();
  const bool ir = p.ir_drop > 0.f;
  const bool pcm = p.wn == WeightNoiseType::PCMRead;
  if (!ir && p.wn == WeightNoiseType::None && !p.has_voffset) return;
  std::vector<float> tmp, current, ramped, pcm_sum;
  if (ir) {
    // current_i = Σ_j |W_ij||v_j| and the ramped product Σ_j W_ij v_j (1 − (1 − j/n)²).
    tmp.resize(static_cast<std::size_t>(rows * in_len));
    current.resize(static_cast<std::size_t>(rows * out_len));
    ramped.resize(current.size());
    std::vector<float> ramp(static_cast<std::size_t>(in_len));
    for (std::int64_t j = 0; j < in_len; ++j) ramp[j] = analog::ir_drop_ramp(j, in_len);
    for (std::int64_t k = 0; k < rows * in_len; ++k) tmp[k] = std::fabs(v[k]);
    cb.product_phases(cw.abs_neg, cw.abs_pos, tmp.data(), rows, m, current.data());
    for (std::int64_t k = 0; k < rows; ++k)
      for (std::int64_t j = 0; j < in_len; ++j) tmp[k * in_len + j] = v[k * in_len + j] * ramp[j];
    cb.product_phases(cw.neg, cb.w, tmp.data(), rows, m, ramped.data());
  }
  if (pcm) {
    tmp.resize(static_cast<std::size_t>(rows * in_len));
    pcm_sum.resize(static_cast<std::size_t>(rows * out_len));
    for (std::int64_t k = 0; k < rows * in_len; ++k) tmp[k] = v[k] * v[k];
    cb.product_phases(cw.abs_neg, cw.abs_pos, tmp.data(), rows, m, pcm_sum.data());
  }
  const float a_scale = static_cast<float>(in_len) / p.ir_g_ratio;
  parallel_for(0, rows, row_grain(rows, out_len), [&](std::int64_t k0, std::int64_t k1) {
    std::vector<float> zs;
    if (p.wn != WeightNoiseType::None)
      zs = chunk_normals(layout_random(layout), k0, k1, out_len,
                         [&](std::int64_t k) { return layout.out(pass, ids[k % m], static_cast<int>(k / m), 0); });
    for (std::int64_t k = k0; k < k1; ++k) {
      float* yk = y + k * out_len;
      if (ir) {
        const float* ck = current.data() + k * out_len;
        const float* rk = ramped.data() + k * out_len;
        for (std::int64_t i = 0; i < out_len; ++i) {
          yk[i] -= p.ir_drop * analog::ir_drop_factor(a_scale * ck[i]) * rk[i];
        }
      }
      if (p.has_voffset) {
        const float* vk = v + k * in_len;
        float sum = 0.f;  // in input order (the CUDA twin sums the same way)
        if (p.ref_scale != 0.f)
          for (std::int64_t j = 0; j < in_len; ++j) sum += vk[j];
        const float y_ref = p.ref_scale * sum;
        for (std::int64_t i = 0; i < out_len; ++i)
          yk[i] = analog::voltage_offset_value(yk[i], p.v_offset ? p.v_offset[i] : 0.f, y_ref, p.r_series);
      }
      if (p.wn == WeightNoiseType::None) continue;
      const float* z = zs.data() + (k - k0) * out_len;
      if (pcm) {
        const float* sk = pcm_sum.data() + k * out_len;
        for (std::int64_t i = 0; i < out_len; ++i) yk[i] += p.w_noise * std::sqrt(sk[i]) * z[i];
      } else {
        const float* vk = v + k * in_len;
        float sq = 0.f;
        for (std::int64_t j = 0; j < in_len; ++j) sq += vk[j] * vk[j];
        const float sd = p.w_noise * std::sqrt(sq);
        for (std::int64_t i = 0; i < out_len; ++i) yk[i] += sd * z[i];
      }
    }
  });
}

// α for every row (all 1 without noise management). AVERAGE_ABS_MAX updates
// the caller's running value row by row (analog::average_abs_max_scan).
std::vector<float> noise_management(const Periphery& p, const float* x, std::int64_t n, std::int64_t in_len,
                                    float* nm_running) {
  std::vector<float> alpha(static_cast<std::size_t>(n), 1.f);
  if (p.nm == NoiseManagementType::None) return alpha;
  const std::int64_t grain = row_grain(n, in_len);
  const bool average = p.nm == NoiseManagementType::AverageAbsMax;
  if (average && !nm_running)
    throw ValueError("analog MVM: AVERAGE_ABS_MAX noise management needs the running value (nm_running)");
  // The running mean uses the plain max|x| (nm_thres does not cap it).
  const NoiseManagementType type = average ? NoiseManagementType::AbsMax : p.nm;
  Periphery q = p;
  if (average) q.nm_thres = 0.f;
  parallel_for(0, n, grain, [&](std::int64_t i0, std::int64_t i1) {
    for (std::int64_t i = i0; i < i1; ++i) {
      if (type == NoiseManagementType::AbsMax) {
        analog::RowStats stats;
        stats.abs_max = abs_max_skipping_nan(x + i * in_len, in_len);
        alpha[i] = analog::noise_management_from_stats(type, q, stats, 1.f);
      } else {
        alpha[i] = noise_management_scale(type, q, x + i * in_len, in_len, 1.f);
      }
    }
  });
  if (average) analog::average_abs_max_scan(alpha.data(), n, nm_running);
  return alpha;
}

AnalogMvmStats run_analog(const Periphery& p, const Crossbar& cb, const float* x, std::int64_t n, float* y,
                          const AnalogRandom& random, float* nm_running, int passes_max) {
  const std::int64_t in_len = cb.in_len(), out_len = cb.out_len();
  const Layout layout = make_layout(random, n, in_len, out_len);
  AnalogMvmStats stats;
  stats.blocks = static_cast<std::uint64_t>(passes_max) * static_cast<std::uint64_t>(n) * layout.slot;
  if (n == 0) return stats;

  // Noise management: α per row.
  const bool nm_on = p.nm != NoiseManagementType::None;
  std::vector<float> alpha = noise_management(p, x, n, in_len, nm_running);
  std::vector<std::int64_t> active;
  active.reserve(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    if (nm_on && !(alpha[i] > 0.f) && p.inp_noise <= 0.f) std::fill(y + i * out_len, y + (i + 1) * out_len, 0.f);
    else active.push_back(i);
  }

  std::vector<std::uint8_t> passed;
  std::vector<float> scale;
  // DAC outputs and crossbar results of a pass (uninitialised: fully written each pass).
  const std::int64_t rows_max = p.pos_neg ? 2 * n : n;
  auto v_buf = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(rows_max * in_len));
  auto out_buf = std::make_unique_for_overwrite<float[]>(static_cast<std::size_t>(rows_max * out_len));
  float* const v = v_buf.get();
  float* const out = out_buf.get();
  // Per-line nonlinearity and output-noise σ (given, or the constant io values).
  std::vector<float> nl_fill, sigma_fill;
  const float* nl = p.nl;
  const float* sigma = p.sigma;
  if (p.has_nl && !nl) {
    nl_fill.assign(static_cast<std::size_t>(out_len), p.nl_const);
    nl = nl_fill.data();
  }
  if (p.has_noise && !sigma) {
    sigma_fill.assign(static_cast<std::size_t>(out_len), p.out_noise);
    sigma = sigma_fill.data();
  }
  const CrossbarWeights cw(p, cb, p.ir_drop > 0.f || p.wn == WeightNoiseType::PCMRead);
  bool use_alpha = nm_on;
  float r = 1.f;
  for (int pass = 0; !active.empty(); ++pass) {
    if (p.worst_case && pass == 1) {
      r = 1.f;
      use_alpha = true;
      const auto m = static_cast<std::int64_t>(active.size());
      parallel_for(0, m, row_grain(m, in_len), [&](std::int64_t k0, std::int64_t k1) {
        for (std::int64_t k = k0; k < k1; ++k) {
          const std::int64_t i = active[k];
          alpha[i] = noise_management_scale(NoiseManagementType::AbsMaxNPSum, p, x + i * in_len, in_len, 0.f);
        }
      });
    }
    const std::int64_t m = static_cast<std::int64_t>(active.size());
    const std::int64_t rows = p.pos_neg ? 2 * m : m;
    const std::int64_t* ids = active.data();
    scale.assign(static_cast<std::size_t>(m), 1.f);
    passed.assign(static_cast<std::size_t>(m), 1);

    // DAC for every row in play (and the pos/neg split).
    parallel_for(0, m, row_grain(m, in_len), [&](std::int64_t k0, std::int64_t k1) {
      std::vector<float> u(p.inp_sto ? in_len : 0), zs;
      if (p.inp_noise > 0.f)
        zs = chunk_normals(random, k0, k1, in_len, [&](std::int64_t k) { return layout.inp_noise(pass, ids[k]); });
      for (std::int64_t k = k0; k < k1; ++k) {
        const std::int64_t i = ids[k];
        const float s = analog::dac_scale(p, alpha[i], use_alpha, r);
        scale[k] = s;
        if (!u.empty()) draw_uniforms(random, layout.inp_round(pass, i), in_len, u.data());
        float* vk = v + k * in_len;
        dac_row(p, x + i * in_len, in_len, s, u.empty() ? nullptr : u.data(),
                zs.empty() ? nullptr : zs.data() + (k - k0) * in_len, vk);
        if (p.pos_neg) {
          float* vp = v + (m + k) * in_len;
          for (std::int64_t j = 0; j < in_len; ++j) {
            vp[j] = vk[j] > 0.f ? vk[j] : 0.f;
            vk[j] = vk[j] < 0.f ? vk[j] : 0.f;
          }
        }
      }
    });

    // One GEMM for all rows of the pass, then the crossbar non-idealities.
    cb.product_phases(cw.neg, cb.w, v, rows, m, out);
    apply_crossbar_effects(p, cb, cw, v, rows, m, ids, pass, layout, out);

    const bool stop = analog::bm_last_pass(p, pass, passes_max, r);
    // ADC path, bound test and the final digital scaling.
    parallel_for(0, m, row_grain(m, out_len), [&](std::int64_t k0, std::int64_t k1) {
      std::vector<float> u(p.out_sto ? out_len : 0), zs[2];
      for (int phase = 0; phase < (p.digital_sum ? 2 : 1) && p.has_noise; ++phase)
        zs[phase] = chunk_normals(random, k0, k1, out_len,
                                  [&](std::int64_t k) { return layout.out(pass, ids[k], phase, 1); });
      auto adc = [&](float* row, std::int64_t k, int phase) {
        if (!u.empty()) draw_uniforms(random, layout.out(pass, ids[k], phase, 2), out_len, u.data());
        const float* z = zs[phase].empty() ? nullptr : zs[phase].data() + (k - k0) * out_len;
        return adc_row(p, nl, sigma, row, out_len, z, u.empty() ? nullptr : u.data(), p.shift);
      };
      for (std::int64_t k = k0; k < k1; ++k) {
        const std::int64_t i = ids[k];
        float* row = out + k * out_len;
        bool ok;
        if (!p.pos_neg) {
          ok = adc(row, k, 0);
        } else {
          const float* pos = out + (m + k) * out_len;
          if (p.digital_sum) {
            float* pos_mut = out + (m + k) * out_len;
            ok = adc(row, k, 0);
            ok = adc(pos_mut, k, 1) && ok;
            for (std::int64_t j = 0; j < out_len; ++j) row[j] = pos[j] + row[j];
          } else {
            for (std::int64_t j = 0; j < out_len; ++j) row[j] = pos[j] + row[j];
            ok = adc(row, k, 0);
          }
        }
        passed[k] = ok ? 1 : 0;
        if (ok || stop) {
          const float gain = p.final_gain / scale[k];
          float* yi = y + i * out_len;
          for (std::int64_t j = 0; j < out_len; ++j) yi[j] = row[j] * gain;
        }
      }
    });
    stats.passes = pass + 1;
    if (stop) break;
    std::vector<std::int64_t> next;
    for (std::int64_t k = 0; k < m; ++k)
      if (!passed[k]) next.push_back(ids[k]);
    active.swap(next);
    r *= 2.f;
  }
  return stats;
}

// Forward (W·x) or backward (Wᵀ·d), as declared in analog_mvm.h.
AnalogMvmStats mvm(const char* what, bool backward, const IOParameters& io, const float* w, std::int64_t out_size,
                   std::int64_t in_size, const float* x, std::int64_t n, float* y, const AnalogLineValues& lines,
                   const AnalogRandom& random, float* nm_running) {
  analog::check_mvm_sizes(what, out_size, in_size, n, w, x, y);
  const Crossbar cb{{out_size, in_size, backward}, w};
  if (io.is_perfect) {
    if (n > 0) gemm(cb.gemm(n), io.out_scale, x, w, 0.f, y);
    return AnalogMvmStats{0, n > 0 ? 1 : 0};
  }
  return run_analog(resolve(io, lines, backward), cb, x, n, y, random, nm_running,
                    backward ? 1 : analog_mvm_max_passes(io));
}

}  // namespace

int analog_mvm_max_passes(const IOParameters& io) {
  if (io.is_perfect || !is_iterative(io.bound_management)) return 1;
  const float res_in = step_in(io);
  int count = 0;
  for (float r = 1.f;; r *= 2.f) {
    ++count;
    if (count >= kPassLimit || r > io.max_bm_factor || (res_in > 0.f && r > io.max_bm_res / res_in)) break;
  }
  if (io.bound_management == BoundManagementType::IterativeWorstCase &&
      io.noise_management != NoiseManagementType::AbsMaxNPSum)
    ++count;
  return count;
}

AnalogMvmStats analog_mvm_forward(const IOParameters& io, const float* w, std::int64_t out_size,
                                  std::int64_t in_size, const float* x, std::int64_t n, float* y,
                                  const AnalogLineValues& lines, const AnalogRandom& random, float* nm_running) {
  return mvm("analog_mvm_forward", false, io, w, out_size, in_size, x, n, y, lines, random, nm_running);
}

AnalogMvmStats analog_mvm_backward(const IOParameters& io, const float* w, std::int64_t out_size,
                                   std::int64_t in_size, const float* d, std::int64_t n, float* dx,
                                   const AnalogLineValues& lines, const AnalogRandom& random, float* nm_running) {
  return mvm("analog_mvm_backward", true, io, w, out_size, in_size, d, n, dx, lines, random, nm_running);
}

std::uint64_t draw_analog_line_values(const IOParameters& io, std::int64_t lines, const AnalogRandom& random,
                                      float* nonlinearity, float* noise, float* v_offset) {
  if (lines < 0) throw ShapeError("draw_analog_line_values: lines = " + std::to_string(lines) + " must be >= 0");
  const std::uint64_t blocks = static_cast<std::uint64_t>((lines + 3) / 4);
  std::vector<float> z(static_cast<std::size_t>(lines));
  if (nonlinearity) {
    draw_normals(random, random.offset, lines, z.data());
    const float n0 = io.out_nonlinearity / bound_or_one(io.out_bound);
    const float sd = std::max(io.out_nonlinearity_std, 0.f);
    for (std::int64_t i = 0; i < lines; ++i) nonlinearity[i] = analog::line_value(n0, sd, z[i]);
  }
  if (noise) {
    draw_normals(random, random.offset + blocks, lines, z.data());
    for (std::int64_t i = 0; i < lines; ++i) noise[i] = analog::line_value(io.out_noise, io.out_noise_std, z[i]);
  }
  if (v_offset) {
    std::vector<float> z2(static_cast<std::size_t>(lines));
    draw_normals(random, random.offset + 2 * blocks, lines, z.data());
    draw_normals(random, random.offset + 3 * blocks, lines, z2.data());
    for (std::int64_t i = 0; i < lines; ++i) v_offset[i] = analog::voltage_offset_line(io.v_offset_std, z[i], z2[i]);
  }
  return 4 * blocks;
}

std::uint64_t draw_weight_read_asymmetry(const IOParameters& io, std::int64_t count, const AnalogRandom& random,
                                         float* factors) {
  if (count < 0)
    throw ShapeError("draw_weight_read_asymmetry: count = " + std::to_string(count) + " must be >= 0");
  if (count > 0 && !factors) throw ValueError("draw_weight_read_asymmetry: null data pointer");
  draw_normals(random, random.offset, count, factors);
  for (std::int64_t k = 0; k < count; ++k) factors[k] = analog::read_asymmetry_factor(io.w_read_asymmetry_dtod, factors[k]);
  return static_cast<std::uint64_t>((count + 3) / 4);
}

float analog_slope_gain(const IOParameters& io, const float* nonlinearity, std::int64_t lines) {
  const bool nonlinear = io.out_nonlinearity > 0.f, series = io.r_series > 0.f;
  if (!(io.slope_calibration > 0.f) || !(nonlinear || series) || lines <= 0) return 1.f;
  float mean = 0.f;  // mean_i n_i (n_i = |out_nonlinearity|/out_bound without per-line values)
  if (nonlinear) {
    const float n0 = std::fabs(io.out_nonlinearity / bound_or_one(io.out_bound));
    if (nonlinearity) {
      double sum = 0.0;
      for (std::int64_t i = 0; i < lines; ++i) sum += std::fabs(nonlinearity[i]);
      mean = static_cast<float>(sum / static_cast<double>(lines));
    } else {
      mean = n0;
    }
  }
  const float f = 1.f + (mean + std::max(io.r_series, 0.f)) * io.slope_calibration * bound_or_one(io.out_bound);
  return f * f;
}

}  // namespace aimc::cpu

namespace aimc::analog {

Periphery resolve_periphery(const IOParameters& io, const cpu::AnalogLineValues& lines, bool backward) {
  const float* nl = lines.out_nonlinearity;
  const float* sigma = lines.out_noise;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  Periphery p{};
  p.nm = io.noise_management;
  p.bm = backward ? BoundManagementType::None : io.bound_management;
  p.mv = io.mv_type;
  p.nm_thres = io.nm_thres;
  p.inp_bound = io.inp_bound > 0.f ? io.inp_bound : kInf;
  const float ri = resolution(io.inp_res);
  p.res_in = ri > 0.f ? ri * 2.f * bound_or_one(io.inp_bound) : 0.f;
  p.inp_noise = io.inp_noise;
  p.inp_sto = io.inp_sto_round && p.res_in > 0.f;
  p.has_inp_asym = io.inp_asymmetry != 0.f;
  p.inp_asym = 1.f - io.inp_asymmetry;
  p.out_bound = io.out_bound > 0.f ? io.out_bound : kInf;
  p.out_bound_one = bound_or_one(io.out_bound);
  const float ro = resolution(io.out_res);
  p.res_out = ro > 0.f ? ro * 2.f * p.out_bound_one : 0.f;
  p.out_sto = io.out_sto_round && p.res_out > 0.f;
  p.out_noise = io.out_noise;
  p.has_out_asym = io.out_asymmetry != 0.f;
  p.out_asym = 1.f - io.out_asymmetry;
  p.out_scale = io.out_scale;
  p.test_neg = io.bm_test_negative_bound;
  p.max_bm_factor = io.max_bm_factor;
  p.max_bm_res = io.max_bm_res;
  p.wn = io.w_noise > 0.f ? io.w_noise_type : WeightNoiseType::None;
  p.w_noise = io.w_noise;
  p.ir_drop = io.ir_drop;
  p.ir_g_ratio = io.ir_drop_g_ratio;
  // r_series turns the nonlinearity step on (aihwkit's NL calibration): its
  // slope-calibration gain applies even with n_i = 0.
  p.has_nl = io.out_nonlinearity != 0.f || io.r_series > 0.f;
  p.nl = io.out_nonlinearity != 0.f ? nl : nullptr;
  p.nl_const = std::fabs(io.out_nonlinearity / p.out_bound_one);
  p.nl_gain = 1.f;
  if (io.slope_calibration > 0.f && p.has_nl) {
    if (lines.slope_gain > 0.f) p.nl_gain = lines.slope_gain;
    else if (io.out_nonlinearity != 0.f && io.out_nonlinearity_std > 0.f)
      throw ValueError("analog MVM: slope_calibration = " + std::to_string(io.slope_calibration) +
                       " with out_nonlinearity_std > 0 needs the gain of the per-line values "
                       "(AnalogLineValues::slope_gain)");
    else p.nl_gain = cpu::analog_slope_gain(io, nullptr, 1);
  }
  p.has_voffset = io.v_offset_std > 0.f || io.r_series > 0.f;
  p.r_series = std::max(io.r_series, 0.f);
  p.ref_scale = -io.v_offset_w_min;
  p.v_offset = lines.v_offset;
  if (io.v_offset_std > 0.f && !p.v_offset)
    throw ValueError("analog MVM: v_offset_std = " + std::to_string(io.v_offset_std) +
                     " > 0 needs the per-line offsets (AnalogLineValues::v_offset)");
  p.w_asym = nullptr;
  if (p.mv != AnalogMVType::OnePass && io.w_read_asymmetry_dtod > 0.f) {
    if (!lines.w_asymmetry)
      throw ValueError("analog MVM: w_read_asymmetry_dtod = " + std::to_string(io.w_read_asymmetry_dtod) +
                       " > 0 with mv_type " + std::string(io.mv_type == AnalogMVType::PosNegSeparate
                                                              ? "POS_NEG_SEPARATE"
                                                              : "POS_NEG_SEPARATE_DIGITAL_SUM") +
                       " needs the per-weight factors (AnalogLineValues::w_asymmetry)");
    p.w_asym = lines.w_asymmetry;
  }
  if (p.has_nl && !p.nl && io.out_nonlinearity != 0.f && io.out_nonlinearity_std > 0.f)
    throw ValueError("analog MVM: out_nonlinearity_std = " + std::to_string(io.out_nonlinearity_std) +
                     " > 0 needs the per-line nonlinearity values (AnalogLineValues::out_nonlinearity)");
  p.sigma = sigma;
  if (!p.sigma && io.out_noise_std > 0.f)
    throw ValueError("analog MVM: out_noise_std = " + std::to_string(io.out_noise_std) +
                     " > 0 needs the per-line noise values (AnalogLineValues::out_noise)");
  p.has_noise = p.sigma != nullptr || io.out_noise > 0.f;
  p.iterative = is_iterative(p.bm);
  p.worst_case = p.bm == BoundManagementType::IterativeWorstCase && p.nm != NoiseManagementType::AbsMaxNPSum;
  p.shift = p.bm == BoundManagementType::Shift;
  p.pos_neg = p.mv != AnalogMVType::OnePass;
  p.digital_sum = p.mv == AnalogMVType::PosNegSeparateDigitalSum;
  p.final_gain = p.shift ? 1.f : p.out_scale;
  if (p.ir_drop > 0.f && !(p.ir_g_ratio > 0.f))
    throw ValueError("analog MVM: ir_drop_g_ratio = " + std::to_string(p.ir_g_ratio) + " must be > 0");
  return p;
}

void check_mvm_sizes(const char* what, std::int64_t out_size, std::int64_t in_size, std::int64_t n, const float* w,
                 const float* a, const float* b) {
  if (out_size <= 0 || in_size <= 0 || n < 0)
    throw ShapeError(std::string(what) + ": need out_size > 0, in_size > 0, n >= 0; got out_size = " +
                     std::to_string(out_size) + ", in_size = " + std::to_string(in_size) +
                     ", n = " + std::to_string(n));
  if (!w || (n > 0 && (!a || !b))) throw ValueError(std::string(what) + ": null data pointer");
}

}  // namespace aimc::analog
