// Input-range clip and data initialisation (see input_range.h).
#include "layers/tiles/input_range.h"

#include <algorithm>
#include <array>
#include <vector>
#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "kernels/analog/input_range_law.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cuda/backend.h"
#include "layers/tiles/tile_state.h"

namespace aimc {
namespace {

// Sums of per-element terms over [0, n) in fixed chunks of kChunk elements,
// run in parallel and added in chunk order: the same double result for any
// thread count. term(i, acc) adds element i's contributions to acc[0..K).
constexpr std::int64_t kChunk = analog::kInputRangeChunk;
template <std::size_t K, class Term>
std::array<double, K> chunked_sums(std::int64_t n, Term term) {
  const std::int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<std::array<double, K>> partial(static_cast<std::size_t>(chunks));
  cpu::parallel_for(0, chunks, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t c = lo; c < hi; ++c) {
      std::array<double, K> acc{};
      for (std::int64_t i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) term(i, acc);
      partial[c] = acc;
    }
  });
  std::array<double, K> total{};
  for (const auto& p : partial)
    for (std::size_t k = 0; k < K; ++k) total[k] += p[k];
  return total;
}

}  // namespace

// v = clip(x, ±r) / r with the input-range gradient of REFERENCE.md section 3;
// x [M, in] float32; r [1] (gradient only if it requires grad).
Tensor input_range_clip(const Tensor& x_in, const Tensor& r, const InputRangeParameter& p) {
  const Tensor x = x_in.detach().contiguous();
  const float rv = std::abs(read_state_scalar<float>(r));  // one small copy when r is on a GPU
  if (!(rv > 0.f) || !std::isfinite(rv))
    throw ValueError("input range clip: the input range must be finite and > 0, got " + std::to_string(rv));
  const std::int64_t n = x.numel();
  if (x.device().is_cuda()) {
    // The CUDA twins (kernels/cuda/input_range.cu): the same law, the sums in the CPU's order.
    Tensor v = Tensor::empty(x.shape(), DType::Float32, x.device());
    cuda::backend().input_range_clip(x.data<float>(), n, rv, v.data<float>());
    return record(v, "input_range_clip", {x_in, r}, [x, rv, p, device = r.device()](const Tensor& g_in) -> std::vector<Tensor> {
      const Tensor g = g_in.contiguous();
      Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
      double clip = 0.0, inside = 0.0;
      cuda::backend().input_range_backward(x.data<float>(), g.data<float>(), x.numel(), rv, dx.data<float>(), &clip,
                                           &inside);
      return {dx, Tensor::full({1}, input_range_gradient(clip, inside, x.numel(), rv, p)).to(device)};
    });
  }
  Tensor v = Tensor::empty(x.shape());
  const float* xs = x.data<float>();
  float* vs = v.data<float>();
  cpu::parallel_for(0, n, cpu::grain_for(n, 1 << 14), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) vs[i] = analog::input_range_value(xs[i], rv);
  });
  return record(v, "input_range_clip", {x_in, r}, [x, rv, p](const Tensor& g_in) -> std::vector<Tensor> {
    const Tensor g = g_in.contiguous();
    const std::int64_t n = x.numel();
    const float* xs = x.data<float>();
    const float* gs = g.data<float>();
    // dxc = g / r is the gradient w.r.t. the clipped input (r cancels for the tiles).
    Tensor dx = Tensor::empty(x.shape());
    float* dxs = dx.data<float>();
    cpu::parallel_for(0, n, cpu::grain_for(n, 1 << 14), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) dxs[i] = analog::input_range_dx(xs[i], gs[i], rv);
    });
    // Sums over fixed chunks, added in chunk order: independent of the thread count.
    const std::int64_t chunks = (n + kChunk - 1) / kChunk;
    std::vector<double> clip(static_cast<std::size_t>(chunks));
    std::vector<std::int64_t> inside(static_cast<std::size_t>(chunks));
    cpu::parallel_for(0, chunks, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t c = lo; c < hi; ++c)
        analog::input_range_chunk_terms(xs, gs, c * kChunk, std::min(n, (c + 1) * kChunk), rv, clip[c], inside[c]);
    });
    std::array<double, 2> sums{};
    for (std::int64_t c = 0; c < chunks; ++c) {
      sums[0] += clip[c];
      sums[1] += static_cast<double>(inside[c]);
    }
    return {dx, Tensor::full({1}, input_range_gradient(sums[0], sums[1], n, rv, p))};
  });
}

double input_range_gradient(double clip_sum, double inside, std::int64_t n, float r, const InputRangeParameter& p) {
  double g_r = clip_sum * p.gradient_scale;
  if (p.gradient_relative) g_r *= r;
  if (p.decay > 0 && n > 0 && inside / double(n) > p.input_min_percentage) g_r += double(p.decay) * r;
  return g_r;
}

// r <- (r·k + alpha·std(x))/(k+1) with the unbiased std over all of x, when
// k < init_from_data and std(x) > 0 (then k <- k + 1).
void update_input_range_from_data(const Tensor& x_in, const InputRangeParameter& p, float& r, float& k) {
  if (!(k < float(p.init_from_data))) return;
  const Tensor x = x_in.detach().contiguous();
  const std::int64_t n = x.numel();
  if (n < 2) return;
  if (x.device().is_cuda()) {
    double mean = 0.0, ss = 0.0;
    cuda::backend().input_range_data_stats(x.data<float>(), n, &mean, &ss);
    update_input_range_from_stats(ss, n, p, r, k);
    return;
  }
  const float* xs = x.data<float>();
  const double mean = chunked_sums<1>(n, [&](std::int64_t i, std::array<double, 1>& acc) { acc[0] += xs[i]; })[0] /
                      double(n);
  const double ss = chunked_sums<1>(n, [&](std::int64_t i, std::array<double, 1>& acc) {
    acc[0] += (xs[i] - mean) * (xs[i] - mean);
  })[0];
  update_input_range_from_stats(ss, n, p, r, k);
}

void update_input_range_from_stats(double squared_deviation, std::int64_t n, const InputRangeParameter& p, float& r,
                                   float& k) {
  if (!(k < float(p.init_from_data)) || n < 2) return;
  const double std_x = std::sqrt(squared_deviation / double(n - 1));  // unbiased, as torch.std
  if (!(std_x > 0)) return;
  r = std::abs(float((double(r) * k + double(p.init_std_alpha) * std_x) / (k + 1.0)));
  k += 1.f;
}

}  // namespace aimc
