// Hardware-aware-training weight transforms: modifier, clipper, remapper
// (see weight_transforms.h for the formulas and the random-number layout).
// Weights in normalised units; PCM_NOISE works internally in µS. The
// per-element math lives in kernels/analog/weight_transform_law.h, shared with
// the CUDA twins (kernels/cuda/weight_transforms.cu) that CUDA tensors go to.
#include "layers/tiles/weight_transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/analog/weight_transform_law.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/random_fill.h"
#include "kernels/cuda/backend.h"
#include "kernels/random.h"

namespace aimc {

namespace {

using MT = WeightModifierType;

// Elements per parallel chunk (a pure function of the problem size).
constexpr std::int64_t kMinGrainElements = 8192;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Float32 [out, in] weights, on the CPU or (contiguous) on CUDA.
void check_weights(const Tensor& w, const char* op) {
  if (!w.defined()) throw ValueError(std::string(op) + ": weights are undefined");
  check_dtype(w, DType::Float32, op);
  if (w.dim() != 2) {
    throw ShapeError(std::string(op) + ": expected 2-D weights [out, in], got shape " + shape_str(w.shape()));
  }
  if (w.device().is_cuda() && !w.is_contiguous()) {
    throw DeviceError(std::string(op) + ": CUDA weights must be contiguous, got strides of a view of shape " +
                      shape_str(w.shape()));
  }
}

// The law header's code for a modifier type.
ModifierKind modifier_kind(MT t) {
  switch (t) {
    case MT::None: return ModifierKind::None;
    case MT::Discretize: return ModifierKind::Discretize;
    case MT::DiscretizePerChannel: return ModifierKind::DiscretizePerChannel;
    case MT::MultNormal: return ModifierKind::MultNormal;
    case MT::AddNormal: return ModifierKind::AddNormal;
    case MT::AddNormalPerChannel: return ModifierKind::AddNormalPerChannel;
    case MT::DiscretizeAddNormal: return ModifierKind::DiscretizeAddNormal;
    case MT::DiscretizeAddNormalPerChannel: return ModifierKind::DiscretizeAddNormalPerChannel;
    case MT::DoReFa: return ModifierKind::DoReFa;
    case MT::Poly: return ModifierKind::Poly;
    case MT::PCMNoise: return ModifierKind::PCMNoise;
    case MT::ProgNoise: return ModifierKind::ProgNoise;
    case MT::DropConnect: return ModifierKind::DropConnect;
    case MT::Copy: return ModifierKind::Copy;
  }
  throw ConfigError("WeightModifierParameter.type: unknown value " + std::to_string(static_cast<int>(t)));
}

// Runs a CUDA entry point, turning its std::runtime_error into a DeviceError.
template <class F>
auto on_cuda(const char* op, F&& f) {
  try {
    return f();
  } catch (const std::runtime_error& e) {
    throw DeviceError(std::string(op) + ": " + e.what());
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

  // count uniforms / standard normals from the blocks base + first, ... : the
  // layouts of cpu::fill_uniform and cpu::fill_normal.
  void uniforms(std::int64_t first, std::int64_t count, float* d) const {
    cpu::fill_uniform(seed, stream, base + static_cast<std::uint64_t>(first), count, d);
  }
  void normals(std::int64_t first, std::int64_t count, float* d) const {
    cpu::fill_normal(seed, stream, base + static_cast<std::uint64_t>(first), count, d);
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
                                 const ModifierLaw& law) {
  std::vector<float> a(static_cast<std::size_t>(rows), law.assumed_wmax);
  if (!law.rel_to_actual_wmax) return a;
  std::vector<float> m = row_abs_max(w, rows, cols, cols_used);
  if (modifier_is_per_channel(law.kind)) {
    for (std::size_t r = 0; r < m.size(); ++r) a[r] = modifier_scale(m[r]);
  } else {
    float g = 0.0f;
    for (float v : m) g = std::max(g, v);
    std::fill(a.begin(), a.end(), modifier_scale(g));
  }
  return a;
}

void pcm_noise(float* o, std::int64_t rows, std::int64_t cols, std::int64_t cols_used, const std::vector<float>& amax,
               const PcmModifierConstants& k, const Section& s) {
  for_elements(rows, cols, cols_used, no_draw, [&](std::int64_t i, std::int64_t row, float) {
    const rng::Block b0 = s.block(2 * i);
    const rng::Block b1 = s.block(2 * i + 1);
    o[i] = pcm_noise_one(o[i], amax[static_cast<std::size_t>(row)], k, b0, b1);
  });
}

}  // namespace

ModifierLaw make_modifier_law(const WeightModifierParameter& p) {
  ModifierLaw law;
  law.kind = modifier_kind(p.type);
  law.std_dev = p.std_dev;
  law.res = p.res;
  law.sto_round = p.sto_round;
  law.dorefa_clip = p.dorefa_clip;
  law.pdrop = p.pdrop;
  law.rel_to_actual_wmax = p.rel_to_actual_wmax;
  law.assumed_wmax = p.assumed_wmax;
  law.copy_last_column = p.copy_last_column;
  law.g_max = p.g_max;
  const bool uses_coeffs = p.type == MT::Poly || p.type == MT::ProgNoise;
  if (uses_coeffs && p.coeffs.empty()) {
    throw ConfigError("WeightModifierParameter.coeffs: POLY and PROG_NOISE need at least one coefficient, got none");
  }
  if (uses_coeffs && p.coeffs.size() > static_cast<std::size_t>(ModifierLaw::kMaxCoeffs)) {
    throw ConfigError("WeightModifierParameter.coeffs: POLY and PROG_NOISE support at most " +
                      std::to_string(ModifierLaw::kMaxCoeffs) + " coefficients, got " +
                      std::to_string(p.coeffs.size()));
  }
  // The other types never read the polynomial.
  law.coeff_count = static_cast<int>(std::min<std::size_t>(p.coeffs.size(), ModifierLaw::kMaxCoeffs));
  for (int j = 0; j < law.coeff_count; ++j) law.coeffs[j] = p.coeffs[static_cast<std::size_t>(j)];
  PcmModifierConstants& k = law.pcm;
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
  return law;
}

Tensor apply_weight_modifier(const Tensor& w, const WeightModifierParameter& p, std::uint64_t seed,
                             std::uint64_t stream, std::uint64_t counter, std::uint64_t* blocks_used) {
  const char* op = "apply_weight_modifier";
  check_weights(w, op);
  p.validate();
  const ModifierLaw law = make_modifier_law(p);
  NoGradGuard no_grad;
  const std::int64_t rows = w.size(0), cols = w.size(1), n = rows * cols;
  const ModifierSections sections = modifier_sections(law, rows, cols);

  if (w.device().is_cuda()) {
    Tensor out = Tensor::empty(w.shape(), DType::Float32, w.device());
    const std::uint64_t used = on_cuda(op, [&] {
      return cuda::backend().weight_modifier(law, w.data<float>(), static_cast<std::size_t>(rows),
                                             static_cast<std::size_t>(cols), out.data<float>(), seed, stream, counter);
    });
    if (blocks_used) *blocks_used = used;
    return out;
  }

  const Tensor src = w.detach().contiguous();
  Tensor out = Tensor::empty(w.shape(), DType::Float32);
  float* o = out.data<float>();
  if (n > 0) std::memcpy(o, src.data<float>(), static_cast<std::size_t>(n) * sizeof(float));
  const auto section = [&](std::uint64_t base) { return Section{seed, stream, counter + base}; };
  const std::int64_t cols_used = law.copy_last_column ? cols - 1 : cols;
  const MT t = p.type;

  if (sections.main_step) {
    const std::vector<float> amax = modifier_amax(o, rows, cols, cols_used, law);
    const float res = law.res;

    if (modifier_is_discretize(law.kind)) {
      const bool sto = sections.sto;
      const Section s = sto ? section(sections.sto_base) : Section{seed, stream, 0};
      const auto draw = [&](std::int64_t g, std::int64_t c, float* d) { sto ? s.uniforms(g, c, d) : no_draw(g, c, d); };
      for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t row, float u) {
        o[i] = modifier_discretize(o[i], amax[static_cast<std::size_t>(row)], res, sto, u);
      });
    }

    if (sections.gaussian) {
      const Section s = section(sections.noise_base);
      const auto draw = [&](std::int64_t g, std::int64_t c, float* d) { s.normals(g, c, d); };
      const float sd = law.std_dev;
      switch (t) {
        case MT::AddNormal:
        case MT::AddNormalPerChannel:
        case MT::DiscretizeAddNormal:
        case MT::DiscretizeAddNormalPerChannel:
          for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t row, float z) {
            o[i] = modifier_add_normal(o[i], sd, amax[static_cast<std::size_t>(row)], z);
          });
          break;
        case MT::MultNormal:
          for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t row, float z) {
            o[i] = modifier_mult_normal(o[i], sd, amax[static_cast<std::size_t>(row)], z);
          });
          break;
        case MT::Poly:
        case MT::ProgNoise: {
          const bool keep_sign = t == MT::ProgNoise;
          const float scale = keep_sign ? sd / law.g_max : sd;
          for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t row, float z) {
            o[i] = modifier_poly_noise(o[i], amax[static_cast<std::size_t>(row)], law.coeffs, law.coeff_count, scale,
                                       keep_sign, z);
          });
          break;
        }
        default:
          break;
      }
    }

    if (sections.dorefa) {
      const bool sto = sections.sto;
      const Section s = sto ? section(sections.sto_base) : Section{seed, stream, 0};
      const float scale = dorefa_scale(law.dorefa_clip, amax[0]);
      const auto draw = [&](std::int64_t g, std::int64_t c, float* d) { sto ? s.uniforms(g, c, d) : no_draw(g, c, d); };
      for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t, float u) {
        o[i] = modifier_dorefa(o[i], scale, res, sto, u);
      });
    }

    if (sections.pcm) pcm_noise(o, rows, cols, cols_used, amax, law.pcm, section(sections.pcm_base));
  }

  if (sections.drop) {
    const Section s = section(sections.drop_base);
    const float pdrop = law.pdrop;
    const auto draw = [&](std::int64_t g, std::int64_t c, float* d) { s.uniforms(g, c, d); };
    for_elements(rows, cols, cols_used, draw, [&](std::int64_t i, std::int64_t, float u) {
      o[i] = modifier_drop(o[i], pdrop, u);
    });
  }
  if (blocks_used) *blocks_used = sections.used;
  return out;
}

namespace {

ClipKind clip_kind(WeightClipType t) {
  switch (t) {
    case WeightClipType::None: return ClipKind::None;
    case WeightClipType::FixedValue: return ClipKind::FixedValue;
    case WeightClipType::LayerGaussian: return ClipKind::LayerGaussian;
    case WeightClipType::AverageChannelMax: return ClipKind::AverageChannelMax;
    case WeightClipType::LayerGaussianPerChannel: return ClipKind::LayerGaussianPerChannel;
  }
  throw ConfigError("WeightClipParameter.type: unknown value " + std::to_string(static_cast<int>(t)));
}

}  // namespace

RemapLaw make_remap_law(const WeightRemapParameter& p) {
  RemapLaw law;
  switch (p.type) {
    case WeightRemapType::None: law.kind = RemapKind::None; break;
    case WeightRemapType::LayerwiseSymmetric: law.kind = RemapKind::LayerwiseSymmetric; break;
    case WeightRemapType::ChannelwiseSymmetric: law.kind = RemapKind::ChannelwiseSymmetric; break;
  }
  law.remapped_wmax = p.remapped_wmax;
  law.max_scale_range = p.max_scale_range;
  law.max_scale_ref = p.max_scale_ref;
  return law;
}

void apply_weight_clip_(Tensor& w, const WeightClipParameter& p) {
  const char* op = "apply_weight_clip_";
  check_weights(w, op);
  p.validate();
  if (p.type == WeightClipType::None || w.numel() == 0) return;
  NoGradGuard no_grad;
  const std::int64_t rows = w.size(0), cols = w.size(1), n = rows * cols;
  if (w.device().is_cuda()) {
    on_cuda(op, [&] {
      cuda::backend().weight_clip(clip_kind(p.type), p.sigma, p.fixed_value, w.data<float>(),
                                  static_cast<std::size_t>(rows), static_cast<std::size_t>(cols));
    });
    return;
  }
  Tensor work = w.is_contiguous() ? w : w.detach().contiguous();
  float* x = work.data<float>();
  const float cap = p.fixed_value;

  // Per-row clip values (all equal except for the per-channel type).
  std::vector<float> clip(static_cast<std::size_t>(rows), -1.0f);
  switch (p.type) {
    case WeightClipType::FixedValue:
      std::fill(clip.begin(), clip.end(), p.fixed_value);
      break;
    case WeightClipType::AverageChannelMax: {
      const std::vector<float> m = row_abs_max(x, rows, cols, cols);
      std::fill(clip.begin(), clip.end(), average_channel_max_clip(m.data(), rows, cap));
      break;
    }
    case WeightClipType::LayerGaussian:
    case WeightClipType::LayerGaussianPerChannel: {
      // Row sums and squared deviations in double, combined in row order.
      std::vector<double> row_sum(static_cast<std::size_t>(rows)), row_ss(static_cast<std::size_t>(rows));
      for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
        for (std::int64_t r = r0; r < r1; ++r)
          row_sum[static_cast<std::size_t>(r)] = row_sum_double(x + r * cols, cols);
      });
      if (p.type == WeightClipType::LayerGaussian) {
        const double mean = sum_in_row_order(row_sum.data(), rows) / static_cast<double>(n);
        for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
          for (std::int64_t r = r0; r < r1; ++r)
            row_ss[static_cast<std::size_t>(r)] = row_squared_deviation(x + r * cols, cols, mean);
        });
        const double ss = sum_in_row_order(row_ss.data(), rows);
        std::fill(clip.begin(), clip.end(), gaussian_clip_value(ss, n, p.sigma, cap));
      } else {
        for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
          for (std::int64_t r = r0; r < r1; ++r) {
            const double mean = row_sum[static_cast<std::size_t>(r)] / static_cast<double>(cols);
            const double ss = row_squared_deviation(x + r * cols, cols, mean);
            clip[static_cast<std::size_t>(r)] = gaussian_clip_value(ss, cols, p.sigma, cap);
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
      for (std::int64_t k = 0; k < cols; ++k) v[k] = clip_symmetric(v[k], c);
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
  if (scales.device() != w.device()) {
    throw DeviceError(std::string(op) + ": scales on " + scales.device().str() + " but weights on " +
                      w.device().str() + "; both must be on the same device");
  }
  check_dtype(scales, DType::Float32, op);
  if (p.type == WeightRemapType::ChannelwiseSymmetric && p.max_scale_range > 0.0f && p.remapped_wmax != 1.0f) {
    throw ConfigError("WeightRemapParameter.remapped_wmax: must be 1 when max_scale_range > 0, got " +
                      std::to_string(p.remapped_wmax));
  }
  if (p.type == WeightRemapType::None || rows == 0) return;
  NoGradGuard no_grad;
  const RemapLaw law = make_remap_law(p);
  if (w.device().is_cuda()) {
    if (!scales.is_contiguous()) throw DeviceError(std::string(op) + ": CUDA scales must be contiguous");
    on_cuda(op, [&] {
      cuda::backend().weight_remap(law, w.data<float>(), static_cast<std::size_t>(rows), static_cast<std::size_t>(cols),
                                   scales.data<float>());
    });
    return;
  }
  Tensor work = w.is_contiguous() ? w : w.detach().contiguous();
  Tensor swork = scales.is_contiguous() ? scales : scales.detach().contiguous();
  float* x = work.data<float>();
  float* s = swork.data<float>();
  const std::vector<float> m = row_abs_max(x, rows, cols, cols);

  // Per row: W_r = W_r·mul_r/div_r (aihwkit's order of operations).
  std::vector<float> mul(static_cast<std::size_t>(rows), 1.0f), div(static_cast<std::size_t>(rows), 1.0f);
  remap_row_factors(law, m.data(), rows, s, mul.data(), div.data());
  for_rows(rows, cols, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) {
      const float mr = mul[static_cast<std::size_t>(r)], dr = div[static_cast<std::size_t>(r)];
      if (mr == 1.0f && dr == 1.0f) continue;
      float* v = x + r * cols;
      for (std::int64_t k = 0; k < cols; ++k) v[k] = remap_weight(v[k], mr, dr);
    }
  });
  if (!w.is_contiguous()) w.copy_(work);
  if (!scales.is_contiguous()) scales.copy_(swork);
}

}  // namespace aimc
