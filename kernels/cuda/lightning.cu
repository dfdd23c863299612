// The lightning-style forward (layers/tiles/lightning_forward.h) on CUDA.
// Fused (no autograd, lightning_forward): per tile column the inputs are clipped, scaled and quantised
// (one thread per value), one kernel applies the weight modifier to a copy of
// the tile, every tile is one cuBLAS GEMM, and one kernel adds
// the output noise, runs the ADC, scales by r and sums into the output in the
// CPU's order (tile columns c = 0, 1, ...). Per-element code:
// kernels/analog/lightning_law.h; noise: the normals of Generator::normal.
// With autograd the layer composes engine ops with the pieces below
// (lightning_dac, lightning_modify_weights, lightning_tile_outputs), which
// launch the same kernels.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/error.h"
#include "kernels/analog/lightning_law.h"
#include "kernels/analog/tile_streams.h"
#include "kernels/cuda/buffer.cuh"
#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {
namespace {

constexpr unsigned kThreads = 256;
using analog::TileStream;

// v[M, piece] = DAC(clip(x[:, offset + j], ±r)/r) (r <= 0: input range off).
__global__ void inputs_kernel(const float* x, std::int64_t m, std::int64_t in_size, std::int64_t offset,
                              std::int64_t piece, float r, float step, float* v) {
  AIMC_GRID_STRIDE(e, m * piece) {
    float value = x[(e / piece) * in_size + offset + e % piece];
    if (r > 0.f) value = analog::input_range_value(value, r);
    if (step > 0.f) value = analog::lightning_dac(value, step);
    v[e] = value;
  }
}

// *all = max_i wrow[i] (one thread; exact in any order).
__global__ void all_max_kernel(const float* wrow, std::int64_t rows, float* all) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  float m = 0.f;
  for (std::int64_t i = 0; i < rows; ++i) m = analog::max_value(m, wrow[i]);
  *all = m;
}

// out[i, j] = discretize(w[i, j]) + weight_noise·wmax·ξ_e (e = i·cols + j), as
// the CPU's lightning_modified_weights; no fused multiply-add.
__global__ void modifier_kernel(analog::LightningLaw law, const float* w, std::int64_t rows, std::int64_t cols,
                                const float* wrow, const float* wall, std::uint64_t seed, std::uint64_t stream,
                                std::uint64_t counter, float* out) {
  AIMC_GRID_STRIDE(e, rows * cols) {
    const std::int64_t i = e / cols;
    const float step = law.quant_states > 0.f
                           ? analog::lightning_weight_step(law.quant_per_row ? wrow[i] : *wall, law.quant_states)
                           : 0.f;
    float v = analog::lightning_discretize(w[e], step, law.quant_states);
    if (law.weight_noise > 0.f) {
      const float sd = __fmul_rn(law.weight_noise, law.weight_noise_per_row ? wrow[i] : *wall);
      v = __fadd_rn(v, __fmul_rn(sd, analog::generator_normal_at(seed, stream, counter, static_cast<std::uint64_t>(e))));
    }
    out[e] = v;
  }
}

// y[i, off + j] (+)= r·ADC(z[i, j] + noise) for the tile's z[M, n_out];
// keep[e] (when not null) = 1 where the ADC clip lets the gradient through,
// else 0. Products and sums are rounded separately (no fused multiply-add),
// as the CPU's separate tensor ops.
__global__ void outputs_kernel(analog::LightningLaw law, const float* z, std::int64_t m, std::int64_t n_out,
                               const float* wrow, const float* wall, std::uint64_t seed, std::uint64_t stream,
                               std::uint64_t counter, float r, bool accumulate, float* y, std::int64_t out_size,
                               std::int64_t out_offset, float* keep) {
  AIMC_GRID_STRIDE(e, m * n_out) {
    const std::int64_t i = e / n_out, j = e % n_out;
    float value = z[e];
    if (law.out_noise > 0.f) {
      const float wm = law.noise_per_row ? wrow[j] : *wall;
      const float xi = __fmul_rn(analog::generator_normal_at(seed, stream, counter, static_cast<std::uint64_t>(e)),
                                 __fmul_rn(law.out_noise, wm));
      value = __fadd_rn(value, xi);
    }
    if (law.adc()) {
      const float b = __fmul_rn(law.out_bound, law.bound_per_row ? wrow[j] : *wall);
      const bool clip = law.out_bound > 0.f;
      value = analog::lightning_adc(value, b, law.out_res_frac, law.out_res_frac > 0.f, false);
      if (keep != nullptr) keep[e] = clip && analog::lightning_adc_clipped(value, b) ? 0.f : 1.f;
      if (clip) value = analog::clamp_value(value, -b, b);
    } else if (keep != nullptr) {
      keep[e] = 1.f;
    }
    if (r != 1.f) value = __fmul_rn(value, r);
    float* target = y + i * out_size + out_offset + j;
    *target = accumulate ? __fadd_rn(*target, value) : value;
  }
}

}  // namespace

std::uint64_t lightning_forward(const analog::LightningLaw& law, const float* x, std::int64_t m,
                                const std::vector<std::int64_t>& in_pieces, const std::vector<std::int64_t>& out_pieces,
                                const std::vector<const float*>& weights, const std::vector<float>& input_ranges,
                                std::uint64_t seed, std::uint64_t first_tile_id, std::uint64_t counter, float* y) {
  const auto R = static_cast<std::int64_t>(out_pieces.size()), C = static_cast<std::int64_t>(in_pieces.size());
  if (R == 0 || C == 0 || std::int64_t(weights.size()) != R * C)
    throw ShapeError("cuda::lightning_forward: " + std::to_string(weights.size()) + " tile weights for a " +
                     std::to_string(R) + " x " + std::to_string(C) + " grid");
  if (!input_ranges.empty() && std::int64_t(input_ranges.size()) != C)
    throw ShapeError("cuda::lightning_forward: " + std::to_string(input_ranges.size()) + " input ranges for " +
                     std::to_string(C) + " tile columns");
  std::int64_t in_size = 0, out_size = 0, piece_max = 0, out_max = 0;
  for (std::int64_t p : in_pieces) in_size += p, piece_max = std::max(piece_max, p);
  for (std::int64_t p : out_pieces) out_size += p, out_max = std::max(out_max, p);
  if (m == 0) return 0;

  Buffer<float> v(static_cast<std::size_t>(m * piece_max)), z(static_cast<std::size_t>(m * out_max));
  Buffer<float> wrow(static_cast<std::size_t>(out_max)), wall(1);
  Buffer<float> modified(law.modifies() ? static_cast<std::size_t>(out_max * piece_max) : 1);
  std::uint64_t blocks = 0;
  std::int64_t in_offset = 0;
  for (std::int64_t c = 0; c < C; ++c) {
    const std::int64_t piece = in_pieces[c];
    const float r = input_ranges.empty() ? 0.f : std::abs(input_ranges[c]);
    if (!input_ranges.empty() && !(r > 0.f && std::isfinite(r)))
      throw ValueError("cuda::lightning_forward: the input range of tile column " + std::to_string(c) +
                       " must be finite and > 0, got " + std::to_string(r));
    AIMC_LAUNCH(inputs_kernel, blocks_for(m * piece), kThreads)(x, m, in_size, in_offset, piece, r, law.inp_step,
                                                                v.get());
    launched("lightning inputs kernel");
    std::int64_t out_offset = 0;
    for (std::int64_t rr = 0; rr < R; ++rr) {
      const std::int64_t t = rr * C + c, n_out = out_pieces[rr];
      const std::uint64_t tile_id = first_tile_id + static_cast<std::uint64_t>(t);
      if (law.needs_wmax()) {
        row_abs_max(weights[t], n_out, piece, piece, wrow.get());
        AIMC_LAUNCH(all_max_kernel, 1, 1)(wrow.get(), n_out, wall.get());
        launched("lightning wmax kernels");
      }
      const float* used = weights[t];
      if (law.modifies()) {
        AIMC_LAUNCH(modifier_kernel, blocks_for(n_out * piece), kThreads)(
            law, weights[t], n_out, piece, wrow.get(), wall.get(), seed, analog::tile_stream(tile_id, TileStream::WeightModifier), counter,
            modified.get());
        launched("lightning modifier kernel");
        if (law.weight_noise > 0.f) blocks = std::max(blocks, static_cast<std::uint64_t>((n_out * piece + 3) / 4));
        used = modified.get();
      }
      cuda::gemm(cpu::gemm_shape(false, true, m, n_out, piece), 1.f, v.get(), used, 0.f, z.get());
      if (law.out_noise > 0.f) blocks = std::max(blocks, static_cast<std::uint64_t>((m * n_out + 3) / 4));
      const float scale = input_ranges.empty() ? 1.f : r;
      AIMC_LAUNCH(outputs_kernel, blocks_for(m * n_out), kThreads)(law, z.get(), m, n_out, wrow.get(), wall.get(),
                                                                   seed, analog::tile_stream(tile_id, TileStream::LightningOutputNoise), counter,
                                                                   scale, c > 0, y, out_size, out_offset, nullptr);
      launched("lightning outputs kernel");
      out_offset += n_out;
    }
    in_offset += piece;
  }
  synchronize();
  return blocks;
}

void lightning_dac(const float* v, std::int64_t n, float step, float* out) {
  if (n == 0) return;
  // inputs_kernel over one row of n values, without the input range.
  AIMC_LAUNCH(inputs_kernel, blocks_for(n), kThreads)(v, 1, n, 0, n, 0.f, step, out);
  launched("lightning DAC kernel");
  synchronize();
}

std::uint64_t lightning_modify_weights(const analog::LightningLaw& law, const float* w, std::int64_t rows,
                                       std::int64_t cols, const float* wrow, std::uint64_t seed, std::uint64_t stream,
                                       std::uint64_t counter, float* out) {
  if (rows * cols == 0) return 0;
  Buffer<float> wall(1);
  AIMC_LAUNCH(all_max_kernel, 1, 1)(wrow, rows, wall.get());
  AIMC_LAUNCH(modifier_kernel, blocks_for(rows * cols), kThreads)(law, w, rows, cols, wrow, wall.get(), seed, stream,
                                                                  counter, out);
  launched("lightning modifier kernels");
  synchronize();
  return law.weight_noise > 0.f ? static_cast<std::uint64_t>((rows * cols + 3) / 4) : 0;
}

std::uint64_t lightning_tile_outputs(const analog::LightningLaw& law, const float* z, std::int64_t m,
                                     std::int64_t n_out, const float* wrow, std::uint64_t seed, std::uint64_t stream,
                                     std::uint64_t counter, float* out, float* keep) {
  if (m * n_out == 0) return 0;
  Buffer<float> wall(1);
  if (law.needs_wmax()) {
    AIMC_LAUNCH(all_max_kernel, 1, 1)(wrow, n_out, wall.get());
    launched("lightning wmax kernel");
  }
  AIMC_LAUNCH(outputs_kernel, blocks_for(m * n_out), kThreads)(law, z, m, n_out, wrow, wall.get(), seed, stream,
                                                               counter, 1.f, false, out, n_out, 0, keep);
  launched("lightning outputs kernel");
  synchronize();
  return law.out_noise > 0.f ? static_cast<std::uint64_t>((m * n_out + 3) / 4) : 0;
}

}  // namespace aimc::cuda
