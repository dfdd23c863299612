// Lightning-style analog forward (see lightning_forward.h).
#include "layers/tiles/lightning_forward.h"

#include "layers/tiles/input_range.h"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/analog/lightning_law.h"
#include "kernels/analog/tile_streams.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cuda/backend.h"
#include "layers/config/json_fields.h"

namespace aimc {
namespace {

using analog::TileStream;

// res·round(v/res) (half to even), straight-through gradient.
Tensor dac_quantize(const Tensor& v_in, float res) {
  const Tensor v = v_in.detach().contiguous();
  const std::int64_t n = v.numel();
  Tensor q = Tensor::empty(v.shape(), DType::Float32, v.device());
  const float* vs = v.data<float>();
  float* qs = q.data<float>();
  if (v.device().is_cuda()) {
    cuda::backend().lightning_dac(vs, n, res, qs);
  } else {
    cpu::parallel_for(0, n, cpu::grain_for(n, 1 << 14), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) qs[i] = analog::lightning_dac(vs[i], res);
    });
  }
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
        if (analog::lightning_adc_clipped(ps[i * n_out + j], b_of(j))) ds[i * n_out + j] = 0.f;
    return {dz};
  });
}

// The output noise and the ADC of one tile's z [M, n_out] on CUDA (one kernel;
// the CPU adds the noise as its own op, then adc()): the gradient passes
// where the clip does not cut. wrow: the tile's row max|W| on the device.
Tensor cuda_tile_outputs(const Tensor& z_in, const analog::LightningLaw& law, const Tensor& wrow, std::uint64_t seed,
                         std::uint64_t stream, std::uint64_t counter, std::uint64_t* blocks) {
  const Tensor z = z_in.detach().contiguous();
  Tensor q = Tensor::empty(z.shape(), DType::Float32, z.device());
  Tensor keep;
  if (law.out_bound > 0.f) keep = Tensor::empty(z.shape(), DType::Float32, z.device());
  *blocks = cuda::backend().lightning_tile_outputs(law, z.data<float>(), z.size(0), z.size(1), wrow.data<float>(), seed,
                                                   stream, counter, q.data<float>(),
                                                   keep.defined() ? keep.data<float>() : nullptr);
  return record(q, "lightning_outputs", {z_in}, [keep](const Tensor& g) -> std::vector<Tensor> {
    return {keep.defined() ? mul(g, keep) : g};
  });
}

// `modified` in the forward, identity gradient to w (the stored weights).
Tensor stand_in(const Tensor& w, const Tensor& modified) {
  return record(modified, "lightning_weight_modifier", {w}, [](const Tensor& g) -> std::vector<Tensor> { return {g}; });
}

// max|W| of every row of the tile (0 for an all-zero row).
std::vector<float> row_wmax(const Tensor& w_in) {
  const Tensor w = w_in.detach().contiguous();
  const std::int64_t rows = w.size(0), cols = w.size(1);
  const float* ws = w.data<float>();
  std::vector<float> m(static_cast<std::size_t>(rows), 0.f);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = 0; j < cols; ++j) m[i] = std::max(m[i], std::abs(ws[i * cols + j]));
  return m;
}

// The weights the tile multiplies with (lightning's clip_and_quantize, then
// modify_weight in training): quantised with step 2·wmax/n, then
// weight_noise·wmax·ξ added, ξ = Generator::normal's value e = i·cols + j from
// (seed, stream, counter); *blocks = Philox blocks used.
Tensor lightning_modified_weights(const Tensor& w_in, const analog::LightningLaw& law, const std::vector<float>& wrow,
                                  float wall, std::uint64_t seed, std::uint64_t stream, std::uint64_t counter,
                                  std::uint64_t* blocks) {
  const Tensor w = w_in.detach().contiguous();
  const std::int64_t rows = w.size(0), cols = w.size(1), n = rows * cols;
  Tensor out = Tensor::empty(w.shape());
  float* os = out.data<float>();
  const float* ws = w.data<float>();
  *blocks = 0;
  if (law.weight_noise > 0.f) {
    Generator gen(seed, stream);
    gen.set_offset(counter);
    gen.normal(os, n);
    *blocks = gen.offset() - counter;
  }
  cpu::parallel_for(0, rows, cpu::grain_for(n, 1 << 14) / std::max<std::int64_t>(cols, 1) + 1,
                    [&](std::int64_t lo, std::int64_t hi) {
                      for (std::int64_t i = lo; i < hi; ++i) {
                        const float step = law.quant_states > 0.f
                                               ? analog::lightning_weight_step(law.quant_per_row ? wrow[i] : wall,
                                                                               law.quant_states)
                                               : 0.f;
                        const float sd = law.weight_noise * (law.weight_noise_per_row ? wrow[i] : wall);
                        for (std::int64_t j = 0; j < cols; ++j) {
                          const std::int64_t e = i * cols + j;
                          float v = analog::lightning_discretize(ws[e], step, law.quant_states);
                          if (law.weight_noise > 0.f) v = v + sd * os[e];
                          os[e] = v;
                        }
                      }
                    });
  return out;
}

// One tile's z = ADC(v·W'ᵀ + output noise) before the factor r on CUDA: the
// CPU loop body below with its host loops as kernels (the same laws, draws
// and gradients). *advance: raised to the Philox blocks the draws used.
Tensor cuda_tile(const Tensor& v, const Tensor& w, const analog::LightningLaw& law, std::uint64_t seed,
                 std::uint64_t tile_id, std::uint64_t counter, std::uint64_t* advance) {
  const std::int64_t rows = w.size(0), cols = w.size(1);
  const Tensor stored = w.detach().contiguous();
  Tensor wrow;  // max|W| per row, on the device
  if (law.needs_wmax()) {
    wrow = Tensor::empty({rows}, DType::Float32, w.device());
    cuda::backend().row_abs_max(stored.data<float>(), rows, cols, cols, wrow.data<float>());
  }
  Tensor w_used = w;
  if (law.modifies()) {
    Tensor mod = Tensor::empty(w.shape(), DType::Float32, w.device());
    *advance = std::max(*advance, cuda::backend().lightning_modify_weights(
                                      law, stored.data<float>(), rows, cols, wrow.data<float>(), seed,
                                      analog::tile_stream(tile_id, TileStream::WeightModifier), counter,
                                      mod.data<float>()));
    w_used = stand_in(w, mod);
  }
  Tensor z = linear(v, w_used, Tensor());
  if (law.out_noise > 0.f || law.adc()) {
    std::uint64_t used = 0;
    z = cuda_tile_outputs(z, law, wrow, seed, analog::tile_stream(tile_id, TileStream::LightningOutputNoise), counter,
                          &used);
    *advance = std::max(*advance, used);
  }
  return z;
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
  for (const Tensor& w : tile_weights)
    if (w.device() != x_rows.device())
      throw DeviceError(name + ": a tile weight is on " + w.device().str() + ", the input on " +
                        x_rows.device().str());
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
  const LightningIOParameters& io = cfg.forward;
  // aihwkit-lightning asserts these in its forward (the DAC, the ADC bound and
  // the output noise are in units of the input range).
  const auto needs_range = [&](const char* field, float value) {
    if (value > 0 && !ir)
      throw ConfigError(std::string("TorchInferenceRPUConfig.forward.") + field + " = " +
                        config::format_number(value) +
                        " > 0 needs pre_post.input_range.enable = true (or " + field + " <= 0)");
  };
  needs_range("inp_res", io.inp_res);
  needs_range("out_res", io.out_res);
  needs_range("out_bound", io.out_bound);
  needs_range("out_noise", io.out_noise);
}

analog::LightningLaw lightning_law(const TorchInferenceRPUConfig& cfg, bool training, std::int64_t tile_columns) {
  const LightningIOParameters& io = cfg.forward;
  analog::LightningLaw law;
  if (io.inp_res > 0) law.inp_step = io.inp_res > 1 ? 2.f / io.inp_res : 2.f * io.inp_res;
  if (training && io.out_noise > 0) law.out_noise = io.out_noise / std::sqrt(float(tile_columns));
  law.noise_per_row = io.out_noise_per_channel;
  law.out_bound = io.out_bound > 0 ? io.out_bound : 0.f;
  if (io.out_res > 0) law.out_res_frac = io.out_res > 1 ? 1.f / io.out_res : io.out_res;
  law.bound_per_row = cfg.clip.type == WeightClipType::LayerGaussianPerChannel;
  // The modifier (lightning's noise_type / quantization_type from the
  // WeightModifierType): quantisation in training and eval, noise in training.
  using T = WeightModifierType;
  const T type = cfg.modifier.type;
  const bool quant = type == T::Discretize || type == T::DiscretizePerChannel || type == T::DiscretizeAddNormal ||
                     type == T::DiscretizeAddNormalPerChannel;
  const bool noise = type == T::AddNormal || type == T::AddNormalPerChannel || type == T::DiscretizeAddNormal ||
                     type == T::DiscretizeAddNormalPerChannel;
  const bool per_row =
      type == T::DiscretizePerChannel || type == T::AddNormalPerChannel || type == T::DiscretizeAddNormalPerChannel;
  if (quant && cfg.modifier.res > 0) {
    // n = max(res, 1/res) states; res is stored as 1/steps in float, so 1/res
    // is the integer step count only up to float rounding: snap to it.
    const double res = cfg.modifier.res, n = std::max(res, 1.0 / res), whole = std::nearbyint(n);
    law.quant_states = float(std::abs(n - whole) < 1e-5 * whole ? whole : n);
    law.quant_per_row = per_row;
  }
  if (training && noise && cfg.modifier.std_dev > 0) {
    law.weight_noise = cfg.modifier.std_dev;
    law.weight_noise_per_row = per_row;
  }
  return law;
}

bool lightning_modifies(const TorchInferenceRPUConfig& cfg, bool training) {
  return lightning_law(cfg, training, 1).modifies();
}

bool lightning_disable_modifier_during_test(TorchInferenceRPUConfig& cfg, std::ostream& warnings) {
  if (!cfg.modifier.enable_during_test) return false;
  cfg.modifier.enable_during_test = false;
  warnings << "aimc: warning: TorchInferenceRPUConfig.modifier.enable_during_test = true was set to false, as "
              "aihwkit-lightning does (deprecated there): the weight noise runs in training only, the weight "
              "quantisation in training and eval\n";
  return true;
}

Tensor lightning_forward(const Tensor& x_rows, const std::vector<Tensor>& tile_weights, const TileGrid& grid,
                         const TorchInferenceRPUConfig& cfg, const std::vector<Tensor>& input_ranges, bool training,
                         const LightningRandom& random) {
  check_lightning_inputs("lightning_forward", x_rows, tile_weights, grid, cfg, input_ranges, random);
  // On CUDA the same composition, with the host loops below as kernels
  // (dac_quantize, lightning_modify_weights, cuda_tile_outputs).
  const bool on_cuda = x_rows.device().is_cuda();
  const std::int64_t R = std::int64_t(grid.out_pieces.size()), C = std::int64_t(grid.in_pieces.size());
  const bool ir = cfg.pre_post.input_range.enable;
  const analog::LightningLaw law = lightning_law(cfg, training, C);
  const bool noise = law.out_noise > 0.f;
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
      r = std::abs(input_ranges[c].detach().to(Device::cpu()).data<float>()[0]);
    }
    if (law.inp_step > 0.f) v = dac_quantize(v, law.inp_step);
    for (std::int64_t rr = 0; rr < R; ++rr) {
      const std::int64_t t = rr * C + c;
      const std::uint64_t tile_id = random.first_tile_id + std::uint64_t(t);
      const Tensor& w = tile_weights[t];
      if (on_cuda) {
        Tensor z = cuda_tile(v, w, law, random.seed, tile_id, counter, &advance);
        if (r != 1.f) z = mul_scalar(z, r);
        row_out[rr] = c == 0 ? z : add(row_out[rr], z);
        continue;
      }
      // wmax of the stored weights, per row and over the tile (lightning's assumed_wmax).
      const std::vector<float> wrow = law.needs_wmax() ? row_wmax(w) : std::vector<float>{};
      const float wall = wrow.empty() ? 0.f : *std::max_element(wrow.begin(), wrow.end());
      Tensor w_used = w;
      if (law.modifies()) {
        std::uint64_t used = 0;
        const Tensor mod = lightning_modified_weights(w, law, wrow, wall, random.seed,
                                                      analog::tile_stream(tile_id, TileStream::WeightModifier),
                                                      counter, &used);
        advance = std::max(advance, used);
        w_used = stand_in(w, mod);
      }
      Tensor z = linear(v, w_used, Tensor());
      const std::int64_t n_out = grid.out_pieces[rr];
      if (noise) {
        Tensor xi = Tensor::empty({m, n_out});
        Generator gen(random.seed, analog::tile_stream(tile_id, TileStream::LightningOutputNoise));
        gen.set_offset(counter);
        float* xs = xi.data<float>();
        gen.normal(xs, m * n_out);
        advance = std::max(advance, gen.offset() - counter);
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n_out; ++j)
            xs[i * n_out + j] *= law.out_noise * (law.noise_per_row ? wrow[j] : wall);
        z = add(z, xi);
      }
      if (adc_on) {
        std::vector<float> bound;
        if (law.bound_per_row) {
          for (float a : wrow) bound.push_back(law.out_bound * a);
        } else {
          bound.push_back(law.out_bound * wall);
        }
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
  std::vector<const float*> stored;
  for (const Tensor& w : tile_weights) stored.push_back(w.data<float>());
  std::vector<float> ranges;
  for (const Tensor& r : input_ranges) ranges.push_back(r.detach().to(Device::cpu()).data<float>()[0]);
  Tensor y = Tensor::empty({x_rows.size(0), grid.out_size}, DType::Float32, Device::cuda());
  const std::uint64_t blocks = cuda::backend().lightning_forward(law, x_rows.data<float>(), x_rows.size(0), grid.in_pieces,
                                                       grid.out_pieces, stored, ranges, random.seed,
                                                       random.first_tile_id, counter, y.data<float>());
  *random.counter = counter + blocks;
  return y;
}

}  // namespace aimc
