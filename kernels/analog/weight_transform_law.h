// The hardware-aware-training weight transforms (weight modifier, clipper,
// remapper; layers/tiles/weight_transforms.h documents the formulas and the
// Philox layout) as plain data and per-element functions, shared by the CPU
// implementation (layers/tiles/weight_transforms.cpp) and its CUDA twin
// (kernels/cuda/weight_transforms.cu), so both evaluate the same expressions.
// Weights in normalised units; PCM_NOISE works internally in µS.
//
// The AIMC_HD functions use only float operations both compilers provide
// (::roundf, ::tanhf, ::logf, ::expf, ::sqrtf, ::fabsf and comparisons
// written like std::min / std::max / std::clamp), so the CPU results are the
// bits the CPU code had before the functions were shared.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/random.h"  // AIMC_HD, rng::Block, rng::philox, rng::uniform_open
#include "kernels/random_normal.h"

namespace aimc {

// The modifier types, in the order of aimc::WeightModifierType (layers/config/
// weight_modifier.h; layers/tiles/weight_transforms.cpp maps one onto the other).
enum class ModifierKind : int {
  None,
  Discretize,
  DiscretizePerChannel,
  MultNormal,
  AddNormal,
  AddNormalPerChannel,
  DiscretizeAddNormal,
  DiscretizeAddNormalPerChannel,
  DoReFa,
  Poly,
  PCMNoise,
  ProgNoise,
  DropConnect,
  Copy,
};

// PCM_NOISE constants shared by every weight of one call (aihwkit's PCM modifier).
struct PcmModifierConstants {
  float g_max = 25.0f;           // µS
  float t0 = 20.0f;              // s
  float t = 20.0f;               // pcm_t_inference + t0, s
  float log_t_ratio = 0.0f;      // ln(t / t0)
  float noise_scale = 0.0f;      // std_dev
  float zero_thres = 0.0f;       // pcm_zero_thres · std_dev · kPcmP0, µS
  float log_sqrt_factor = 0.0f;  // sqrt(ln((t + t_read) / (2 t_read)))
  float p_reset = 0.0f, p_gmax = 0.0f, p_random = 0.0f;
};

// One WeightModifierParameter as plain data (built by weight_transforms.cpp).
struct ModifierLaw {
  static constexpr int kMaxCoeffs = 16;
  ModifierKind kind = ModifierKind::None;
  float std_dev = 0.0f;
  float res = 0.0f;
  bool sto_round = false;
  float dorefa_clip = 0.6f;
  float pdrop = 0.0f;
  bool rel_to_actual_wmax = true;
  float assumed_wmax = 1.0f;
  bool copy_last_column = false;
  float g_max = 25.0f;
  float coeffs[kMaxCoeffs] = {};  // Poly / ProgNoise: c0, c1, ...
  int coeff_count = 0;
  PcmModifierConstants pcm;
};

// ---- Which steps a kind takes -------------------------------------------

AIMC_HD bool modifier_is_per_channel(ModifierKind t) {
  return t == ModifierKind::DiscretizePerChannel || t == ModifierKind::AddNormalPerChannel ||
         t == ModifierKind::DiscretizeAddNormalPerChannel;
}
AIMC_HD bool modifier_is_discretize(ModifierKind t) {
  return t == ModifierKind::Discretize || t == ModifierKind::DiscretizePerChannel ||
         t == ModifierKind::DiscretizeAddNormal || t == ModifierKind::DiscretizeAddNormalPerChannel;
}
AIMC_HD bool modifier_is_gaussian(ModifierKind t) {
  return t == ModifierKind::AddNormal || t == ModifierKind::AddNormalPerChannel || t == ModifierKind::MultNormal ||
         t == ModifierKind::DiscretizeAddNormal || t == ModifierKind::DiscretizeAddNormalPerChannel ||
         t == ModifierKind::Poly || t == ModifierKind::ProgNoise;
}
// Kinds that change the weights before drop connect.
AIMC_HD bool modifier_has_main_step(ModifierKind t) {
  return t != ModifierKind::None && t != ModifierKind::Copy && t != ModifierKind::DropConnect;
}

// The Philox sections of one call (see weight_transforms.h): base block of
// each section relative to the caller's counter, and the blocks used.
struct ModifierSections {
  bool main_step = false;  // the type's own step runs (and needs the scale a)
  bool sto = false, gaussian = false, dorefa = false, pcm = false, drop = false;
  std::uint64_t sto_base = 0, noise_base = 0, pcm_base = 0, drop_base = 0;
  std::uint64_t used = 0;
};

AIMC_HD ModifierSections modifier_sections(const ModifierLaw& law, std::int64_t rows, std::int64_t cols) {
  ModifierSections s;
  const std::int64_t n = rows * cols;
  const std::int64_t cols_used = law.copy_last_column ? cols - 1 : cols;
  const std::uint64_t groups = static_cast<std::uint64_t>((n + 3) / 4);
  const ModifierKind t = law.kind;
  const bool any = n > 0 && cols_used > 0;
  s.main_step = any && modifier_has_main_step(t);
  if (s.main_step) {
    if (modifier_is_discretize(t) && law.sto_round) {
      s.sto = true;
      s.sto_base = s.used;
      s.used += groups;
    }
    if (modifier_is_gaussian(t) && law.std_dev > 0.0f) {
      s.gaussian = true;
      s.noise_base = s.used;
      s.used += groups;
    }
    if (t == ModifierKind::DoReFa) {
      s.dorefa = true;
      if (law.sto_round) {
        s.sto = true;
        s.sto_base = s.used;
        s.used += groups;
      }
    }
    if (t == ModifierKind::PCMNoise) {
      s.pcm = true;
      s.pcm_base = s.used;
      s.used += 2 * static_cast<std::uint64_t>(n);
    }
  }
  if (any && law.pdrop > 0.0f) {
    s.drop = true;
    s.drop_base = s.used;
    s.used += groups;
  }
  return s;
}

// ---- Comparisons written as std::min / std::max / std::clamp -------------

AIMC_HD float law_min(float a, float b) { return b < a ? b : a; }
AIMC_HD float law_max(float a, float b) { return a < b ? b : a; }
AIMC_HD float law_clamp(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

// ---- Per-element modifier steps ------------------------------------------

// The scale a of a row from its max|W| m (rel_to_actual_wmax: 1 if m is 0).
AIMC_HD float modifier_scale(float m) { return m > 0.0f ? m : 1.0f; }

// DISCRETIZE: a·res·round(w/a/res); with stochastic rounding round(v + u − ½).
AIMC_HD float modifier_discretize(float w, float a, float res, bool sto, float u) {
  float v = w / a / res;
  if (sto) v += u - 0.5f;
  return a * (res * ::roundf(v));
}

// ADD_NORMAL (and the add step of DISCRETIZE_ADD_NORMAL): w + std_dev·a·ξ.
AIMC_HD float modifier_add_normal(float w, float std_dev, float a, float z) { return w + std_dev * a * z; }

// MULT_NORMAL: w·(1 + std_dev·a·ξ).
AIMC_HD float modifier_mult_normal(float w, float std_dev, float a, float z) { return w * (1.0f + std_dev * a * z); }

// σ polynomial c0 + c1·x + c2·x² + ... (Horner; count >= 1).
AIMC_HD float modifier_poly(const float* c, int count, float x) {
  float s = c[count - 1];
  for (int j = count - 1; j-- > 0;) s = s * x + c[j];
  return s;
}

// POLY (keep_sign false; scale = std_dev) and PROG_NOISE (keep_sign true;
// scale = std_dev / g_max): w + a·scale·poly(|w|/a)·ξ, PROG_NOISE keeping the sign of w.
AIMC_HD float modifier_poly_noise(float w, float a, const float* c, int count, float scale, bool keep_sign, float z) {
  const float sig = modifier_poly(c, count, ::fabsf(w) / a) * scale;
  const float y = w + a * sig * z;
  return keep_sign ? (w < 0.0f ? -::fabsf(y) : ::fabsf(y)) : y;
}

// The Gaussian step of every Gaussian kind.
AIMC_HD float modifier_gaussian(const ModifierLaw& law, float w, float a, float z) {
  switch (law.kind) {
    case ModifierKind::AddNormal:
    case ModifierKind::AddNormalPerChannel:
    case ModifierKind::DiscretizeAddNormal:
    case ModifierKind::DiscretizeAddNormalPerChannel:
      return modifier_add_normal(w, law.std_dev, a, z);
    case ModifierKind::MultNormal:
      return modifier_mult_normal(w, law.std_dev, a, z);
    case ModifierKind::Poly:
      return modifier_poly_noise(w, a, law.coeffs, law.coeff_count, law.std_dev, false, z);
    case ModifierKind::ProgNoise:
      return modifier_poly_noise(w, a, law.coeffs, law.coeff_count, law.std_dev / law.g_max, true, z);
    default:
      return w;
  }
}

// DOREFA: |dorefa_clip / tanh(a)| with a the scale of row 0 (the tile's).
AIMC_HD float dorefa_scale(float dorefa_clip, float a) { return ::fabsf(dorefa_clip / ::tanhf(a)); }

// DOREFA: res·round(tanh(w)·scale/res) (stochastic rounding as modifier_discretize).
AIMC_HD float modifier_dorefa(float w, float scale, float res, bool sto, float u) {
  float v = ::tanhf(w) * scale / res;
  if (sto) v += u - 0.5f;
  return res * ::roundf(v);
}

// PCM_NOISE programming-noise polynomial (µS at std_dev 1) and read time.
constexpr float kPcmP0 = 0.26348f;
constexpr float kPcmP1 = 1.9650f;
constexpr float kPcmP2 = -1.1731f;
constexpr double kPcmTRead = 250.0e-9;  // s

// PCM_NOISE for one weight with scale a (aihwkit's PCM modifier kernel; g in
// µS). b0: box_muller_fast on words (0,1) gives the programming and drift
// normals, on (2,3) the read normal; b1: uniforms for reset, g_max hit, g_max
// sign, random hit.
AIMC_HD float pcm_noise_one(float w, float a, const PcmModifierConstants& k, const rng::Block& b0,
                            const rng::Block& b1) {
  float g = law_clamp(w, -a, a) * k.g_max / a;
  if (!(::fabsf(g) > k.zero_thres)) g = 0.0f;  // small targets are not programmed
  const bool negative = g < 0.0f;
  if (k.p_reset > 0.0f && rng::uniform_open(b1.v[0]) < k.p_reset) g = 0.0f;
  if (k.p_gmax > 0.0f && rng::uniform_open(b1.v[1]) < k.p_gmax) {
    g = rng::uniform_open(b1.v[2]) > 0.5f ? g - k.g_max : g + k.g_max;
  }
  if (k.p_random > 0.0f) {
    const float u = rng::uniform_open(b1.v[3]);
    if (u < k.p_random) {
      const float value = (u / k.p_random) * k.g_max;  // uniform in (0, g_max) given u < p
      g = g > 0.0f ? value : -value;
    }
  }
  g = law_clamp(g, -k.g_max, k.g_max);
  if (!(::fabsf(g) > 0.0f)) return 0.0f;

  float z_prog, z_drift, z_read, z_unused;
  rng::box_muller_fast(b0.v[0], b0.v[1], z_prog, z_drift);
  rng::box_muller_fast(b0.v[2], b0.v[3], z_read, z_unused);
  const float g_rel = ::fabsf(g / k.g_max);
  const float sigma_prog = kPcmP0 + g_rel * kPcmP1 + g_rel * g_rel * kPcmP2;
  const float g_prog = g + k.noise_scale * sigma_prog * z_prog;
  const float g_prog_rel = ::fabsf(g_prog / k.g_max);
  float g_drift = g_prog;
  if (k.t > k.t0) {
    // Only the spread of the drift exponent (the mean drift is assumed compensated).
    const float sigma_nu = law_clamp(-0.0125f * ::logf(law_max(g_prog_rel, 1e-6f)) - 0.0059f, 0.008f, 0.045f);
    const float nu = ::fabsf(z_drift * sigma_nu);
    g_drift = g_prog * ::expf(-nu * k.log_t_ratio);  // (t/t0)^-ν
  }
  const float g_pow = g_prog_rel > 0.0f ? ::expf(0.65f * ::logf(g_prog_rel)) : 0.0f;  // g_r^0.65
  const float q_s = law_min(0.0088f / law_max(g_pow, 1e-3f), 0.2f);
  const float g_final = g_drift + k.noise_scale * ::fabsf(g_drift) * q_s * k.log_sqrt_factor * z_read;
  const float w_final = g_final / k.g_max * a;
  return negative ? -::fabsf(w_final) : ::fabsf(w_final);  // the sign cannot change
}

// Drop connect: 0 with probability pdrop (u uniform in (0, 1)).
AIMC_HD float modifier_drop(float w, float pdrop, float u) { return u < pdrop ? 0.0f : w; }

// ---- One element through every step (the CUDA kernel's body) ------------

// Uniform i of a section starting at `base`: word i%4 of block base + i/4.
AIMC_HD float section_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t base, std::uint64_t i) {
  return rng::uniform_open(rng::philox(seed, stream, base + i / 4).v[i % 4]);
}

// Element i (column < cols_used) of weight w with row scale a, a0 the scale
// of row 0 (DOREFA), `counter` the caller's first block: the steps in the
// order of the CPU implementation (which runs them as separate passes).
AIMC_HD float modify_element(const ModifierLaw& law, const ModifierSections& s, std::uint64_t seed,
                             std::uint64_t stream, std::uint64_t counter, std::uint64_t i, float w, float a, float a0) {
  if (s.main_step) {
    if (modifier_is_discretize(law.kind)) {
      const float u = s.sto ? section_uniform(seed, stream, counter + s.sto_base, i) : 0.0f;
      w = modifier_discretize(w, a, law.res, s.sto, u);
    }
    if (s.gaussian) w = modifier_gaussian(law, w, a, rng::normal_at(seed, stream, counter + s.noise_base, i));
    if (s.dorefa) {
      const float u = s.sto ? section_uniform(seed, stream, counter + s.sto_base, i) : 0.0f;
      w = modifier_dorefa(w, dorefa_scale(law.dorefa_clip, a0), law.res, s.sto, u);
    }
    if (s.pcm) {
      const rng::Block b0 = rng::philox(seed, stream, counter + s.pcm_base + 2 * i);
      const rng::Block b1 = rng::philox(seed, stream, counter + s.pcm_base + 2 * i + 1);
      w = pcm_noise_one(w, a, law.pcm, b0, b1);
    }
  }
  if (s.drop) w = modifier_drop(w, law.pdrop, section_uniform(seed, stream, counter + s.drop_base, i));
  return w;
}

// ---- Weight clip ----------------------------------------------------------

// The clip types, in the order of aimc::WeightClipType.
enum class ClipKind : int { None, FixedValue, LayerGaussian, AverageChannelMax, LayerGaussianPerChannel };

// x·y and x + y in double, never fused into an fma on the device (nvcc fuses
// by default). The host compiler may still fuse them on some -march, so CPU
// and CUDA agree to the last bit only where it does not.
AIMC_HD double law_dmul(double x, double y) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(x, y);
#else
  return x * y;
#endif
}
AIMC_HD double law_dadd(double x, double y) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(x, y);
#else
  return x + y;
#endif
}

// Σ v[c] in double, in column order.
AIMC_HD double row_sum_double(const float* v, std::int64_t cols) {
  double s = 0.0;
  for (std::int64_t c = 0; c < cols; ++c) s = law_dadd(s, v[c]);
  return s;
}

// Σ (v[c] − mean)² in double, in column order.
AIMC_HD double row_squared_deviation(const float* v, std::int64_t cols, double mean) {
  double ss = 0.0;
  for (std::int64_t c = 0; c < cols; ++c) ss = law_dadd(ss, law_dmul(v[c] - mean, v[c] - mean));
  return ss;
}

// A clip value capped by fixed_value when that is > 0 (aihwkit).
AIMC_HD float clip_capped(float c, float cap) { return cap > 0.0f ? law_min(c, cap) : c; }

// sigma·sqrt(ss/(count − 1)) (0 for count <= 1), capped.
AIMC_HD float gaussian_clip_value(double ss, std::int64_t count, float sigma, float cap) {
  const double sd = count > 1 ? ::sqrt(ss / static_cast<double>(count - 1)) : 0.0;
  return clip_capped(static_cast<float>(sd * sigma), cap);
}

// Host: Σ v[r] in row order (combines the per-row sums of the gaussian types).
inline double sum_in_row_order(const double* v, std::int64_t rows) {
  double total = 0.0;
  for (std::int64_t r = 0; r < rows; ++r) total += v[r];
  return total;
}

// Host: AVERAGE_CHANNEL_MAX's clip value from the row maxima m (rows > 0).
inline float average_channel_max_clip(const float* m, std::int64_t rows, float cap) {
  double sum = 0.0;
  for (std::int64_t r = 0; r < rows; ++r) sum += m[r];
  return clip_capped(static_cast<float>(sum / static_cast<double>(rows)), cap);
}

// clamp(w, −c, c) (callers skip rows with c <= 0).
AIMC_HD float clip_symmetric(float w, float c) { return law_min(law_max(w, -c), c); }

// ---- Weight remap ---------------------------------------------------------

// The remap types, in the order of aimc::WeightRemapType.
enum class RemapKind : int { None, LayerwiseSymmetric, ChannelwiseSymmetric };

struct RemapLaw {
  RemapKind kind = RemapKind::None;
  float remapped_wmax = 1.0f;
  float max_scale_range = 0.0f;
  float max_scale_ref = 0.0f;
};

// Host-side per-row factors (aihwkit's WeightRemapper): from the row maxima
// m[r] = max|W_r| and the scales s[r] (updated in place) sets mul[r], div[r]
// (both preset to 1) so that the new row is W_r·mul_r/div_r.
inline void remap_row_factors(const RemapLaw& p, const float* m, std::int64_t rows, float* s, float* mul, float* div) {
  if (p.kind == RemapKind::LayerwiseSymmetric) {
    float g = 0.0f;
    for (std::int64_t r = 0; r < rows; ++r) g = law_max(g, m[r]);
    g /= p.remapped_wmax;
    if (g > 0.0f) {
      for (std::int64_t r = 0; r < rows; ++r) {
        s[r] *= g;
        div[r] = g;
      }
    }
  } else if (p.kind == RemapKind::ChannelwiseSymmetric && p.max_scale_range <= 0.0f) {
    for (std::int64_t r = 0; r < rows; ++r) {
      float a = m[r] / p.remapped_wmax;
      a = a > 0.0f ? a : 1.0f;
      s[r] *= a;
      div[r] = a;
    }
  } else if (p.kind == RemapKind::ChannelwiseSymmetric) {
    float min_scale = 3.402823466e+38f;  // FLT_MAX
    for (std::int64_t r = 0; r < rows; ++r) min_scale = law_min(min_scale, s[r]);
    min_scale = law_max(min_scale, 0.0f);
    if (min_scale > 0.0f && p.max_scale_ref > 0.0f) min_scale = law_max(min_scale, p.max_scale_ref);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float a = m[r];
      const float old_scale = s[r];
      float new_scale = a > 0.0f ? a * old_scale : old_scale;
      if (min_scale > 0.0f && new_scale / min_scale > p.max_scale_range) new_scale = min_scale * p.max_scale_range;
      if (new_scale != 0.0f) {
        mul[r] = old_scale;
        div[r] = new_scale;
      }
      s[r] = new_scale;
    }
  }
}

// One remapped weight: w·mul/div.
AIMC_HD float remap_weight(float w, float mul, float div) { return w * mul / div; }

}  // namespace aimc
