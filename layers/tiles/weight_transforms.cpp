// Hardware-aware-training weight transforms: modifier, clipper, remapper
// (see weight_transforms.h for the formulas and the random-number layout).
// Weights in normalised units; PCM_NOISE works internally in µS.
#include "layers/tiles/weight_transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/cpu/parallel.h"
#include "kernels/random.h"
#include "kernels/random_normal.h"

namespace aimc {

namespace {

using MT = WeightModifierType;

// Elements per parallel chunk (a pure function of the problem size).
constexpr std::int64_t kMinGrainElements = 8192;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

void check_weights(const Tensor& w, const char* op) {
  if (!w.defined()) throw ValueError(std::string(op) + ": weights are undefined");
  check_cpu(w, op);
  check_dtype(w, DType::Float32, op);
  if (w.dim() != 2) {
    throw ShapeError(std::string(op) + ": expected 2-D weights [out, in], got shape " + shape_str(w.shape()));
  }
}

// Calls body(lo, hi) over chunks of rows sized from the row length only.
template <class Body>
void for_rows(std::int64_t rows, std::int64_t cols, Body&& body) {
  const std::int64_t min_rows = std::max<std::int64_t>(1, kMinGrainElements / std::max<std::int64_t>(cols, 1));
  cpu::parallel_for(0, rows, cpu::grain_for(rows, min_rows), body);
}

// Values per tile of the element loops (a multiple of 4: one Philox block per 4).
constexpr std::int64_t kTile = 512;

// Draws from one section of consecutive Philox blocks: element i of the tile
// uses block i/4 of the section.
struct Section {
  std::uint64_t seed;
  std::uint64_t stream;
  std::uint64_t base;

  rng::Block block(std::int64_t k) const { return rng::philox(seed, stream, base + static_cast<std::uint64_t>(k)); }

  // count uniforms in (0, 1) from the blocks first, first+1, ... (word i%4).
  void uniforms(std::int64_t first, std::int64_t count, float* d) const {
    for (std::int64_t b = 0; 4 * b < count; ++b) {
      const rng::Block k = block(first + b);
      for (std::int64_t j = 0; j < 4 && 4 * b + j < count; ++j) d[4 * b + j] = rng::uniform_open(k.v[j]);
    }
  }

  // count (<= kTile) standard normals: rng::box_muller_fast on the word pairs
  // (0,1), (2,3) of each block, split into loops that vectorise (same bits).
  void normals(std::int64_t first, std::int64_t count, float* d) const {
    std::uint32_t words[kTile];
    float radius2[kTile / 2], sine[kTile / 2], cosine[kTile / 2];
    const std::int64_t blocks = (count + 3) / 4;
    for (std::int64_t b = 0; b < blocks; ++b) {
      const rng::Block k = block(first + b);
      for (int j = 0; j < 4; ++j) words[4 * b + j] = k.v[j];
    }
    const std::int64_t pairs = (count + 1) / 2;
    for (std::int64_t i = 0; i < pairs; ++i) {
      radius2[i] = rng::box_muller_radius2(words[2 * i]);
      rng::sincos_turn(rng::uniform_open(words[2 * i + 1]), sine[i], cosine[i]);
    }
    for (std::int64_t i = 0; i < count / 2; ++i) {
      const float radius = std::sqrt(radius2[i]);
      d[2 * i] = radius * cosine[i];
      d[2 * i + 1] = radius * sine[i];
    }
    if (count % 2) d[count - 1] = std::sqrt(radius2[pairs - 1]) * cosine[pairs - 1];
  }
};

// For every element i of an n = rows·cols tile whose column is < cols_used:
// body(i, row, d) with d the draw of element i, filled per tile of kTile
// elements by draw(i0/4, count, d) (chunks depend only on n).
template <class Draw, class Body>
void for_elements(std::int64_t rows, std::int64_t cols, std::int64_t cols_used, Draw&& draw, Body&& body) {
  const std::int64_t n = rows * cols;
  const std::int64_t groups = ceil_div(n, 4);
  cpu::parallel_for(0, groups, cpu::grain_for(groups, kMinGrainElements / 4), [&](std::int64_t g0, std::int64_t g1) {
    float d[kTile];
    const std::int64_t end = std::min(g1 * 4, n);
    for (std::int64_t t0 = g0 * 4; t0 < end; t0 += kTile) {
      const std::int64_t t1 = std::min(t0 + kTile, end);
      draw(t0 / 4, t1 - t0, d);
      // Row segments [s, e) of this tile, skipping the columns >= cols_used.
      for (std::int64_t row = t0 / cols, s = t0; s < t1; ++row) {
        const std::int64_t row_begin = row * cols;
        const std::int64_t e = std::min(t1, row_begin + cols_used);
        for (std::int64_t i = s; i < e; ++i) body(i, row, d[i - t0]);
        s = row_begin + cols;
      }
    }
  });
}

// Draw for loops that need no random numbers.
void no_draw(std::int64_t, std::int64_t count, float* d) { std::fill(d, d + count, 0.0f); }

bool is_per_channel(MT t) {
  return t == MT::DiscretizePerChannel || t == MT::AddNormalPerChannel || t == MT::DiscretizeAddNormalPerChannel;
}
bool is_discretize(MT t) {
  return t == MT::Discretize || t == MT::DiscretizePerChannel || t == MT::DiscretizeAddNormal ||
         t == MT::DiscretizeAddNormalPerChannel;
}
bool is_gaussian(MT t) {
  return t == MT::AddNormal || t == MT::AddNormalPerChannel || t == MT::MultNormal || t == MT::DiscretizeAddNormal ||
         t == MT::DiscretizeAddNormalPerChannel || t == MT::Poly || t == MT::ProgNoise;
}

// Row maxima of |w| over the first cols_used columns.
std::vector<float> row_abs_max(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t cols_used) {
  std::vector<float> m(static_cast<std::size_t>(rows), 0.0f);
  for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* x = w + r * cols;
      float a = 0.0f;
      for (std::int64_t c = 0; c < cols_used; ++c) a = std::max(a, std::fabs(x[c]));
      m[static_cast<std::size_t>(r)] = a;
    }
  });
  return m;
}

// The scale a per row (see the header).
std::vector<float> modifier_amax(const float* w, std::int64_t rows, std::int64_t cols, std::int64_t cols_used,
                                 const WeightModifierParameter& p) {
  std::vector<float> a(static_cast<std::size_t>(rows), p.assumed_wmax);
  if (!p.rel_to_actual_wmax) return a;
  std::vector<float> m = row_abs_max(w, rows, cols, cols_used);
  if (is_per_channel(p.type)) {
    for (std::size_t r = 0; r < m.size(); ++r) a[r] = m[r] > 0.0f ? m[r] : 1.0f;
  } else {
    float g = 0.0f;
    for (float v : m) g = std::max(g, v);
    std::fill(a.begin(), a.end(), g > 0.0f ? g : 1.0f);
  }
  return a;
}

// σ polynomial c0 + c1·x + c2·x² + ... (Horner).
float poly(const std::vector<float>& c, float x) {
  float s = c.back();
  for (std::size_t j = c.size() - 1; j-- > 0;) s = s * x + c[j];
  return s;
}

// PCM_NOISE for one weight (aihwkit's PCM modifier kernel; g in µS).
constexpr float kPcmP0 = 0.26348f;
constexpr float kPcmP1 = 1.9650f;
constexpr float kPcmP2 = -1.1731f;
constexpr double kPcmTRead = 250.0e-9;

struct PcmConstants {
  float g_max, t0, t, log_t_ratio, noise_scale, zero_thres, log_sqrt_factor, p_reset, p_gmax, p_random;
};

float pcm_noise_one(float w, float a, const PcmConstants& k, const rng::Block& b0, const rng::Block& b1) {
  float g = std::clamp(w, -a, a) * k.g_max / a;
  if (!(std::fabs(g) > k.zero_thres)) g = 0.0f;  // small targets are not programmed
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
  g = std::clamp(g, -k.g_max, k.g_max);
  if (!(std::fabs(g) > 0.0f)) return 0.0f;

  float z_prog, z_drift, z_read, z_unused;
  rng::box_muller_fast(b0.v[0], b0.v[1], z_prog, z_drift);
  rng::box_muller_fast(b0.v[2], b0.v[3], z_read, z_unused);
  const float g_rel = std::fabs(g / k.g_max);
  const float sigma_prog = kPcmP0 + g_rel * kPcmP1 + g_rel * g_rel * kPcmP2;
  const float g_prog = g + k.noise_scale * sigma_prog * z_prog;
  const float g_prog_rel = std::fabs(g_prog / k.g_max);
  float g_drift = g_prog;
  if (k.t > k.t0) {
    // Only the spread of the drift exponent (the mean drift is assumed compensated).
    const float sigma_nu = std::clamp(-0.0125f * std::log(std::max(g_prog_rel, 1e-6f)) - 0.0059f, 0.008f, 0.045f);
    const float nu = std::fabs(z_drift * sigma_nu);
    g_drift = g_prog * std::exp(-nu * k.log_t_ratio);  // (t/t0)^-ν
  }
  const float g_pow = g_prog_rel > 0.0f ? std::exp(0.65f * std::log(g_prog_rel)) : 0.0f;  // g_r^0.65
  const float q_s = std::min(0.0088f / std::max(g_pow, 1e-3f), 0.2f);
  const float g_final = g_drift + k.noise_scale * std::fabs(g_drift) * q_s * k.log_sqrt_factor * z_read;
  const float w_final = g_final / k.g_max * a;
  return negative ? -std::fabs(w_final) : std::fabs(w_final);  // the sign cannot change
}

void pcm_noise(float* o, std::int64_t rows, std::int64_t cols, std::int64_t cols_used, const std::vector<float>& amax,
               const WeightModifierParameter& p, const Section& s) {
  PcmConstants k{};
  k.g_max = p.g_max;
  k.t0 = p.pcm_t0;
  k.t = p.pcm_t_inference + p.pcm_t0;
  k.log_t_ratio = std::log(k.t / k.t0);
  k.noise_scale = p.std_dev;
  k.zero_thres = p.pcm_zero_thres * p.std_dev * kPcmP0;
  k.log_sqrt_factor =
      static_cast<float>(std::sqrt(std::log((static_cast<double>(k.t) + kPcmTRead) / (2.0 * kPcmTRead))));
  k.p_reset = p.pcm_prob_at_reset;
  k.p_gmax = p.pcm_prob_at_gmax;
  k.p_random = p.pcm_prob_at_random;
  for_elements(rows, cols, cols_used, no_draw, [&](std::int64_t i, std::int64_t row, float) {
    const rng::Block b0 = s.block(2 * i);
    const rng::Block b1 = s.block(2 * i + 1);
    o[i] = pcm_noise_one(o[i], amax[static_cast<std::size_t>(row)], k, b0, b1);
  });
}

}  // namespace

Tensor apply_weight_modifier(const Tensor& w, const WeightModifierParameter& p, std::uint64_t seed,
                             std::uint64_t stream, std::uint64_t counter, std::uint64_t* blocks_used) {
  const char* op = "apply_weight_modifier";
  check_weights(w, op);
  p.validate();
  NoGradGuard no_grad;
  const Tensor src = w.detach().contiguous();
  const std::int64_t rows = w.size(0), cols = w.size(1), n = rows * cols;
  Tensor out = Tensor::empty(w.shape(), DType::Float32);
  float* o = out.data<float>();
  if (n > 0) std::memcpy(o, src.data<float>(), static_cast<std::size_t>(n) * sizeof(float));
  std::uint64_t used = 0;
  const auto section = [&](std::uint64_t blocks) {
    const Section s{seed, stream, counter + used};
    used += blocks;
    return s;
  };
  const std::int64_t cols_used = p.copy_last_column ? cols - 1 : cols;
  const MT t = p.type;
  const std::uint64_t groups = static_cast<std::uint64_t>(ceil_div(n, 4));

  if (n > 0 && cols_used > 0 && t != MT::None && t != MT::Copy && t != MT::DropConnect) {
    const std::vector<float> amax = modifier_amax(o, rows, cols, cols_used, p);
    const float res = p.res;

    if (is_discretize(t)) {
      const bool sto = p.sto_round;
      const Section s = sto ? section(groups) : Section{seed, stream, 0};
      const auto draw = [&](std::int64_t g, std::int64_t c, float* d) { sto ? s.uniforms(g, c, d) : no_draw(g, c, d); };
      for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t row, float u) {
        const float a = amax[static_cast<std::size_t>(row)];
        float v = o[i] / a / res;
        if (sto) v += u - 0.5f;
        o[i] = a * (res * std::round(v));
      });
    }

    if (is_gaussian(t) && p.std_dev > 0.0f) {
      const Section s = section(groups);
      const auto draw = [&](std::int64_t g, std::int64_t c, float* d) { s.normals(g, c, d); };
      const float sd = p.std_dev;
      switch (t) {
        case MT::AddNormal:
        case MT::AddNormalPerChannel:
        case MT::DiscretizeAddNormal:
        case MT::DiscretizeAddNormalPerChannel:
          for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t row, float z) {
            o[i] += sd * amax[static_cast<std::size_t>(row)] * z;
          });
          break;
        case MT::MultNormal:
          for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t row, float z) {
            o[i] *= 1.0f + sd * amax[static_cast<std::size_t>(row)] * z;
          });
          break;
        case MT::Poly:
        case MT::ProgNoise: {
          const bool keep_sign = t == MT::ProgNoise;
          const float scale = keep_sign ? sd / p.g_max : sd;
          for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t row, float z) {
            const float a = amax[static_cast<std::size_t>(row)];
            const float x = o[i];
            const float sig = poly(p.coeffs, std::fabs(x) / a) * scale;
            const float y = x + a * sig * z;
            o[i] = keep_sign ? (x < 0.0f ? -std::fabs(y) : std::fabs(y)) : y;
          });
          break;
        }
        default:
          break;
      }
    }

    if (t == MT::DoReFa) {
      const bool sto = p.sto_round;
      const Section s = sto ? section(groups) : Section{seed, stream, 0};
      const float scale = std::fabs(p.dorefa_clip / std::tanh(amax[0]));
      const auto draw = [&](std::int64_t g, std::int64_t c, float* d) { sto ? s.uniforms(g, c, d) : no_draw(g, c, d); };
      for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t, float u) {
        float v = std::tanh(o[i]) * scale / res;
        if (sto) v += u - 0.5f;
        o[i] = res * std::round(v);
      });
    }

    if (t == MT::PCMNoise) {
      const Section s = section(2 * static_cast<std::uint64_t>(n));
      pcm_noise(o, rows, cols, cols_used, amax, p, s);
    }
  }

  if (n > 0 && cols_used > 0 && p.pdrop > 0.0f) {
    const Section s = section(groups);
    const float pdrop = p.pdrop;
    const auto draw = [&](std::int64_t g, std::int64_t c, float* d) { s.uniforms(g, c, d); };
    for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t, float u) {
      if (u < pdrop) o[i] = 0.0f;
    });
  }
  if (blocks_used) *blocks_used = used;
  return out;
}

void apply_weight_clip_(Tensor& w, const WeightClipParameter& p) {
  const char* op = "apply_weight_clip_";
  check_weights(w, op);
  p.validate();
  if (p.type == WeightClipType::None || w.numel() == 0) return;
  NoGradGuard no_grad;
  Tensor work = w.is_contiguous() ? w : w.detach().contiguous();
  float* x = work.data<float>();
  const std::int64_t rows = w.size(0), cols = w.size(1), n = rows * cols;
  const float cap = p.fixed_value;
  const auto capped = [cap](float c) { return cap > 0.0f ? std::min(c, cap) : c; };

  // Per-row clip values (all equal except for the per-channel type).
  std::vector<float> clip(static_cast<std::size_t>(rows), -1.0f);
  switch (p.type) {
    case WeightClipType::FixedValue:
      std::fill(clip.begin(), clip.end(), p.fixed_value);
      break;
    case WeightClipType::AverageChannelMax: {
      const std::vector<float> m = row_abs_max(x, rows, cols, cols);
      double sum = 0.0;
      for (float v : m) sum += v;
      std::fill(clip.begin(), clip.end(), capped(static_cast<float>(sum / static_cast<double>(rows))));
      break;
    }
    case WeightClipType::LayerGaussian:
    case WeightClipType::LayerGaussianPerChannel: {
      // Row sums and squared deviations in double, combined in row order.
      std::vector<double> row_sum(static_cast<std::size_t>(rows)), row_ss(static_cast<std::size_t>(rows));
      for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r) {
          const float* v = x + r * cols;
          double s = 0.0;
          for (std::int64_t c = 0; c < cols; ++c) s += v[c];
          row_sum[static_cast<std::size_t>(r)] = s;
        }
      });
      if (p.type == WeightClipType::LayerGaussian) {
        double total = 0.0;
        for (double s : row_sum) total += s;
        const double mean = total / static_cast<double>(n);
        for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
          for (std::int64_t r = r0; r < r1; ++r) {
            const float* v = x + r * cols;
            double ss = 0.0;
            for (std::int64_t c = 0; c < cols; ++c) ss += (v[c] - mean) * (v[c] - mean);
            row_ss[static_cast<std::size_t>(r)] = ss;
          }
        });
        double ss = 0.0;
        for (double s : row_ss) ss += s;
        const double sd = n > 1 ? std::sqrt(ss / static_cast<double>(n - 1)) : 0.0;
        std::fill(clip.begin(), clip.end(), capped(static_cast<float>(sd * p.sigma)));
      } else {
        for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
          for (std::int64_t r = r0; r < r1; ++r) {
            const float* v = x + r * cols;
            const double mean = row_sum[static_cast<std::size_t>(r)] / static_cast<double>(cols);
            double ss = 0.0;
            for (std::int64_t c = 0; c < cols; ++c) ss += (v[c] - mean) * (v[c] - mean);
            const double sd = cols > 1 ? std::sqrt(ss / static_cast<double>(cols - 1)) : 0.0;
            clip[static_cast<std::size_t>(r)] = capped(static_cast<float>(sd * p.sigma));
          }
        });
      }
      break;
    }
    case WeightClipType::None:
      break;
  }

  for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float c = clip[static_cast<std::size_t>(r)];
      if (!(c > 0.0f)) continue;
      float* v = x + r * cols;
      for (std::int64_t k = 0; k < cols; ++k) v[k] = std::min(std::max(v[k], -c), c);
    }
  });
  if (!w.is_contiguous()) w.copy_(work);
}

void apply_weight_remap_(Tensor& w, Tensor& scales, const WeightRemapParameter& p) {
  const char* op = "apply_weight_remap_";
  check_weights(w, op);
  p.validate();
  const std::int64_t rows = w.size(0), cols = w.size(1);
  if (!scales.defined() || scales.dim() != 1 || scales.size(0) != rows) {
    throw ShapeError(std::string(op) + ": scales must have shape [" + std::to_string(rows) + "] for weights " +
                     shape_str(w.shape()) + ", got " + (scales.defined() ? shape_str(scales.shape()) : "undefined"));
  }
  check_cpu(scales, op);
  check_dtype(scales, DType::Float32, op);
  if (p.type == WeightRemapType::ChannelwiseSymmetric && p.max_scale_range > 0.0f && p.remapped_wmax != 1.0f) {
    throw ConfigError("WeightRemapParameter.remapped_wmax: must be 1 when max_scale_range > 0, got " +
                      std::to_string(p.remapped_wmax));
  }
  if (p.type == WeightRemapType::None || rows == 0) return;
  NoGradGuard no_grad;
  Tensor work = w.is_contiguous() ? w : w.detach().contiguous();
  Tensor swork = scales.is_contiguous() ? scales : scales.detach().contiguous();
  float* x = work.data<float>();
  float* s = swork.data<float>();
  const std::vector<float> m = row_abs_max(x, rows, cols, cols);

  // Per row: W_r = W_r·mul_r/div_r (aihwkit's order of operations).
  std::vector<float> mul(static_cast<std::size_t>(rows), 1.0f), div(static_cast<std::size_t>(rows), 1.0f);
  if (p.type == WeightRemapType::LayerwiseSymmetric) {
    float g = 0.0f;
    for (float v : m) g = std::max(g, v);
    g /= p.remapped_wmax;
    if (g > 0.0f) {
      for (std::int64_t r = 0; r < rows; ++r) s[r] *= g;
      std::fill(div.begin(), div.end(), g);
    }
  } else if (p.max_scale_range <= 0.0f) {
    for (std::int64_t r = 0; r < rows; ++r) {
      float a = m[static_cast<std::size_t>(r)] / p.remapped_wmax;
      a = a > 0.0f ? a : 1.0f;
      s[r] *= a;
      div[static_cast<std::size_t>(r)] = a;
    }
  } else {
    float min_scale = std::numeric_limits<float>::max();
    for (std::int64_t r = 0; r < rows; ++r) min_scale = std::min(min_scale, s[r]);
    min_scale = std::max(min_scale, 0.0f);
    if (min_scale > 0.0f && p.max_scale_ref > 0.0f) min_scale = std::max(min_scale, p.max_scale_ref);
    for (std::int64_t r = 0; r < rows; ++r) {
      const float a = m[static_cast<std::size_t>(r)];
      const float old_scale = s[r];
      float new_scale = a > 0.0f ? a * old_scale : old_scale;
      if (min_scale > 0.0f && new_scale / min_scale > p.max_scale_range) new_scale = min_scale * p.max_scale_range;
      if (new_scale != 0.0f) {
        mul[static_cast<std::size_t>(r)] = old_scale;
        div[static_cast<std::size_t>(r)] = new_scale;
      }
      s[r] = new_scale;
    }
  }
  for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float mr = mul[static_cast<std::size_t>(r)], dr = div[static_cast<std::size_t>(r)];
      if (mr == 1.0f && dr == 1.0f) continue;
      float* v = x + r * cols;
      for (std::int64_t k = 0; k < cols; ++k) v[k] = v[k] * mr / dr;
    }
  });
  if (!w.is_contiguous()) w.copy_(work);
  if (!scales.is_contiguous()) scales.copy_(swork);
}

}  // namespace aimc
