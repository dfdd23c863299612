// Lightning-style analog forward (see lightning_forward.h).
#include "layers/tiles/lightning_forward.h"

#include "layers/tiles/input_range.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/analog/lightning_law.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cuda/backend.h"
#include "layers/tiles/weight_transforms.h"

namespace aimc {
namespace {

constexpr std::uint64_t kModifierStream = 3, kOutNoiseStream = 4;

// res·round(v/res) (half to even), straight-through gradient.
Tensor dac_quantize(const Tensor& v_in, float res) {
  const Tensor v = v_in.detach().contiguous();
  const std::int64_t n = v.numel();
  Tensor q = Tensor::empty(v.shape());
  const float* vs = v.data<float>();
  float* qs = q.data<float>();
  cpu::parallel_for(0, n, cpu::grain_for(n, 1 << 14), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) qs[i] = analog::lightning_dac(vs[i], res);
  });
  return record(q, "lightning_dac", {v_in}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

// ADC on z [M, n_out]: per output column j with bound b_j (one or n_out
// values): quantise with step 2·b_j·res_frac (if quantise and b_j > 0,
// straight-through), then clip to ±b_j (if clip; gradient where |q| ≤ b_j).
Tensor adc(const Tensor& z_in, const std::vector<float>& bound, float res_frac, bool quantise, bool clip) {
  const Tensor z = z_in.detach().contiguous();
  const std::int64_t m = z.size(0), n_out = z.size(1);
  Tensor q = Tensor::empty(z.shape());
  const float* zs = z.data<float>();
  float* qs = q.data<float>();
  auto b_of = [bound](std::int64_t j) { return bound.size() == 1 ? bound[0] : bound[j]; };
  cpu::parallel_for(0, m, cpu::grain_for(m * n_out, 1 << 14) / std::max<std::int64_t>(n_out, 1) + 1,
                    [&](std::int64_t lo, std::int64_t hi) {
                      for (std::int64_t i = lo; i < hi; ++i)
                        for (std::int64_t j = 0; j < n_out; ++j)
                          qs[i * n_out + j] =
                              analog::lightning_adc(zs[i * n_out + j], b_of(j), res_frac, quantise, false);
                    });
  Tensor pre_clip;
  if (clip) {
    pre_clip = q.clone();
    const float* ps = pre_clip.data<float>();
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n_out; ++j) {
        const float b = b_of(j);
        qs[i * n_out + j] = analog::clamp_value(ps[i * n_out + j], -b, b);
      }
  }
  return record(q, "lightning_adc", {z_in}, [pre_clip, bound, b_of](const Tensor& g_in) -> std::vector<Tensor> {
    if (!pre_clip.defined()) return {g_in};
    const Tensor g = g_in.contiguous();
    Tensor dz = g.clone();
    const std::int64_t m = g.size(0), n_out = g.size(1);
    const float* ps = pre_clip.data<float>();
    float* ds = dz.data<float>();
    for (std::int64_t i = 0; i < m; ++i)
      for (std::int64_t j = 0; j < n_out; ++j)
        if (std::abs(ps[i * n_out + j]) > b_of(j)) ds[i * n_out + j] = 0.f;
    return {dz};
  });
}

// `modified` in the forward, identity gradient to w (the stored weights).
Tensor stand_in(const Tensor& w, const Tensor& modified) {
  return record(modified, "lightning_weight_modifier", {w}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

// max|W| of the tile, or per row; 0 stays 0.
std::vector<float> tile_wmax(const Tensor& w_in, bool per_row) {
  const Tensor w = w_in.detach().contiguous();
  const std::int64_t rows = w.size(0), cols = w.size(1);
  const float* ws = w.data<float>();
  std::vector<float> m(per_row ? rows : 1, 0.f);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) {
      float& t = m[per_row ? i : 0];
      t = std::max(t, std::abs(ws[i * cols + j]));
    }
  return m;
}

// The checks shared by the CPU and CUDA forwards (op names the caller).
void check_lightning_inputs(const char* op, const Tensor& x_rows, const std::vector<Tensor>& tile_weights,
                            const TileGrid& grid, const TorchInferenceRPUConfig& cfg,
                            const std::vector<Tensor>& input_ranges, const LightningRandom& random) {
  check_lightning_config(cfg);
  const std::string name = op;
  const std::int64_t R = std::int64_t(grid.out_pieces.size()), C = std::int64_t(grid.in_pieces.size());
  if (x_rows.dim() != 2 || x_rows.size(1) != grid.in_size)
    throw ShapeError(name + ": input " + shape_str(x_rows.shape()) + " does not match [M, " +
                     std::to_string(grid.in_size) + "]");
  check_dtype(x_rows, DType::Float32, op);
  if (std::int64_t(tile_weights.size()) != R * C)
    throw ShapeError(name + ": " + std::to_string(tile_weights.size()) + " tile weights for " +
                     std::to_string(R * C) + " tiles");
  const bool ir = cfg.pre_post.input_range.enable;
  if (ir && std::int64_t(input_ranges.size()) != C)
    throw ShapeError(name + ": " + std::to_string(input_ranges.size()) + " input ranges for " + std::to_string(C) +
                     " tile columns");
  if (!ir && !input_ranges.empty())
    throw UsageError(name + ": input ranges given but pre_post.input_range.enable is false");
  if (random.counter == nullptr) throw UsageError(name + ": LightningRandom.counter must be set");
  for (std::int64_t t = 0; t < R * C; ++t) {
    const Shape want{grid.out_pieces[t / C], grid.in_pieces[t % C]};
    if (tile_weights[t].shape() != want)
      throw ShapeError(name + ": tile " + std::to_string(t) + " has " + shape_str(tile_weights[t].shape()) +
                       ", expected " + shape_str(want));
  }
}

}  // namespace

void check_lightning_config(const TorchInferenceRPUConfig& cfg) {
  const bool ir = cfg.pre_post.input_range.enable;
  if (cfg.forward.inp_res > 0 && !ir)
    throw ConfigError("TorchInferenceRPUConfig: forward.inp_res = " + std::to_string(cfg.forward.inp_res) +
                      " > 0 needs pre_post.input_range.enable = true (or inp_res <= 0)");
  if (cfg.forward.out_res > 0 && !ir)
    throw ConfigError("TorchInferenceRPUConfig: forward.out_res = " + std::to_string(cfg.forward.out_res) +
                      " > 0 needs pre_post.input_range.enable = true (or out_res <= 0)");
  if (cfg.forward.out_res > 0 && !(cfg.forward.out_bound > 0))
    throw ConfigError("TorchInferenceRPUConfig: forward.out_res > 0 needs forward.out_bound > 0, got out_bound = " +
                      std::to_string(cfg.forward.out_bound));
}

analog::LightningLaw lightning_law(const TorchInferenceRPUConfig& cfg, bool training, std::int64_t tile_columns) {
  const IOParameters& io = cfg.forward;
  analog::LightningLaw law;
  if (io.inp_res > 0) law.inp_step = io.inp_res > 1 ? 2.f / io.inp_res : 2.f * io.inp_res;
  if (training && io.out_noise > 0) law.out_noise = io.out_noise / std::sqrt(float(tile_columns));
  law.out_bound = io.out_bound > 0 ? io.out_bound : 0.f;
  if (io.out_res > 0) law.out_res_frac = io.out_res > 1 ? 1.f / io.out_res : io.out_res;
  law.per_row_wmax = cfg.clip.type == WeightClipType::LayerGaussianPerChannel;
  return law;
}

bool lightning_modifies(const TorchInferenceRPUConfig& cfg, bool training) {
  return cfg.modifier.type != WeightModifierType::None && (training || cfg.modifier.enable_during_test);
}

Tensor lightning_forward(const Tensor& x_rows, const std::vector<Tensor>& tile_weights, const TileGrid& grid,
                         const TorchInferenceRPUConfig& cfg, const std::vector<Tensor>& input_ranges, bool training,
                         const LightningRandom& random) {
  check_lightning_inputs("lightning_forward", x_rows, tile_weights, grid, cfg, input_ranges, random);
  check_cpu(x_rows, "lightning_forward");
  const std::int64_t R = std::int64_t(grid.out_pieces.size()), C = std::int64_t(grid.in_pieces.size());
  const bool ir = cfg.pre_post.input_range.enable;
  const analog::LightningLaw law = lightning_law(cfg, training, C);
  const bool modify = lightning_modifies(cfg, training);
  const bool noise = law.out_noise > 0.f;
  const bool per_row = law.per_row_wmax;
  const bool adc_on = law.adc();
  const std::int64_t m = x_rows.size(0);
  const std::uint64_t counter = *random.counter;
  std::uint64_t advance = 0;

  std::vector<Tensor> row_out(R);
  for (std::int64_t c = 0; c < C; ++c) {
    Tensor v = slice(x_rows, 1, grid.in_offsets[c], grid.in_offsets[c] + grid.in_pieces[c]);
    float r = 1.f;
    if (ir) {
      v = input_range_clip(v, input_ranges[c], cfg.pre_post.input_range);
      r = std::abs(input_ranges[c].data<float>()[0]);
    }
    if (law.inp_step > 0.f) v = dac_quantize(v, law.inp_step);
    for (std::int64_t rr = 0; rr < R; ++rr) {
      const std::int64_t t = rr * C + c;
      const std::uint64_t tile_id = random.first_tile_id + std::uint64_t(t);
      const Tensor& w = tile_weights[t];
      Tensor w_used = w;
      if (modify) {
        std::uint64_t used = 0;
        const Tensor mod = apply_weight_modifier(w.detach(), cfg.modifier, random.seed, tile_id * 16 + kModifierStream,
                                                 counter, &used);
        advance = std::max(advance, used);
        w_used = stand_in(w, mod);
      }
      Tensor z = linear(v, w_used, Tensor());
      const std::vector<float> wmax = (noise || adc_on) ? tile_wmax(w, per_row) : std::vector<float>{};
      const std::int64_t n_out = grid.out_pieces[rr];
      if (noise) {
        Tensor xi = Tensor::empty({m, n_out});
        Generator gen(random.seed, tile_id * 16 + kOutNoiseStream);
        gen.set_offset(counter);
        float* xs = xi.data<float>();
        gen.normal(xs, m * n_out);
        advance = std::max(advance, gen.offset() - counter);
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n_out; ++j) xs[i * n_out + j] *= law.out_noise * wmax[per_row ? j : 0];
        z = add(z, xi);
      }
      if (adc_on) {
        std::vector<float> bound(wmax.size());
        for (std::size_t j = 0; j < wmax.size(); ++j) bound[j] = law.out_bound * wmax[j];
        z = adc(z, bound, law.out_res_frac, law.out_res_frac > 0.f, law.out_bound > 0.f);
      }
      if (r != 1.f) z = mul_scalar(z, r);
      row_out[rr] = c == 0 ? z : add(row_out[rr], z);
    }
  }
  *random.counter = counter + advance;
  return R == 1 ? row_out[0] : concat(row_out, 1);
}

Tensor lightning_forward_cuda(const Tensor& x_rows, const std::vector<Tensor>& tile_weights, const TileGrid& grid,
                              const TorchInferenceRPUConfig& cfg, const std::vector<Tensor>& input_ranges,
                              bool training, const LightningRandom& random) {
  const char* op = "lightning_forward_cuda";
  check_lightning_inputs(op, x_rows, tile_weights, grid, cfg, input_ranges, random);
  const auto on_cuda = [op](const Tensor& t, const char* what) {
    if (!t.device().is_cuda() || !t.is_contiguous())
      throw DeviceError(std::string(op) + ": " + what + " must be contiguous on CUDA, got " + t.device().str());
  };
  on_cuda(x_rows, "the input");
  for (const Tensor& w : tile_weights) on_cuda(w, "every tile weight");
  const std::int64_t C = std::int64_t(grid.in_pieces.size());
  NoGradGuard no_grad;
  const analog::LightningLaw law = lightning_law(cfg, training, C);
  const std::uint64_t counter = *random.counter;
  std::uint64_t advance = 0;
  std::vector<Tensor> modified;  // keeps the modified weights alive for the call
  std::vector<const float*> used, stored;
  for (std::size_t t = 0; t < tile_weights.size(); ++t) {
    stored.push_back(tile_weights[t].data<float>());
    if (lightning_modifies(cfg, training)) {
      std::uint64_t blocks = 0;
      const std::uint64_t tile_id = random.first_tile_id + std::uint64_t(t);
      modified.push_back(apply_weight_modifier(tile_weights[t], cfg.modifier, random.seed,
                                               tile_id * 16 + kModifierStream, counter, &blocks));
      advance = std::max(advance, blocks);
      used.push_back(modified.back().data<float>());
    } else {
      used.push_back(stored.back());
    }
  }
  std::vector<float> ranges;
  for (const Tensor& r : input_ranges) ranges.push_back(r.detach().to(Device::cpu()).data<float>()[0]);
  Tensor y = Tensor::empty({x_rows.size(0), grid.out_size}, DType::Float32, Device::cuda());
  const std::uint64_t noise = cuda::backend().lightning_forward(
      law, x_rows.data<float>(), x_rows.size(0), grid.in_pieces, grid.out_pieces, used, stored, ranges, random.seed,
      random.first_tile_id, counter, y.data<float>());
  *random.counter = counter + std::max(advance, noise);
  return y;
}

}  // namespace aimc
