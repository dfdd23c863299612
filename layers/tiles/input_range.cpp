// Input-range clip and data initialisation (see input_range.h).
#include "layers/tiles/input_range.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "kernels/cpu/parallel.h"

namespace aimc {

// v = clip(x, ±r) / r with the input-range gradient of REFERENCE.md section 3;
// x [M, in] float32; r [1] (gradient only if it requires grad).
Tensor input_range_clip(const Tensor& x_in, const Tensor& r, const InputRangeParameter& p) {
  const Tensor x = x_in.detach().contiguous();
  const float rv = std::abs(r.data<float>()[0]);
  if (!(rv > 0.f) || !std::isfinite(rv))
    throw ValueError("input range clip: the input range must be finite and > 0, got " + std::to_string(rv));
  const std::int64_t n = x.numel();
  Tensor v = Tensor::empty(x.shape());
  const float* xs = x.data<float>();
  float* vs = v.data<float>();
  cpu::parallel_for(0, n, cpu::grain_for(n, 1 << 14), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t i = lo; i < hi; ++i) vs[i] = std::min(std::max(xs[i], -rv), rv) / rv;
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
      for (std::int64_t i = lo; i < hi; ++i) dxs[i] = std::abs(xs[i]) <= rv ? gs[i] / rv : 0.f;
    });
    // Serial sums in double: independent of the thread count.
    double clip_sum = 0;
    std::int64_t inside = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double dxc = double(gs[i]) / rv;
      if (xs[i] >= rv) clip_sum += std::min(0.0, dxc);
      if (xs[i] <= -rv) clip_sum -= std::max(0.0, dxc);
      if (std::abs(xs[i]) < rv) ++inside;
    }
    double g_r = clip_sum * p.gradient_scale;
    if (p.gradient_relative) g_r *= rv;
    if (p.decay > 0 && n > 0 && double(inside) / double(n) > p.input_min_percentage) g_r += double(p.decay) * rv;
    return {dx, Tensor::full({1}, g_r)};
  });
}

// r <- (r·k + alpha·std(x))/(k+1) with the unbiased std over all of x, when
// k < init_from_data and std(x) > 0 (then k <- k + 1).
void update_input_range_from_data(const Tensor& x_in, const InputRangeParameter& p, float& r, float& k) {
  if (!(k < float(p.init_from_data))) return;
  const Tensor x = x_in.detach().contiguous();
  const std::int64_t n = x.numel();
  if (n < 2) return;
  const float* xs = x.data<float>();
  double s = 0;
  for (std::int64_t i = 0; i < n; ++i) s += xs[i];
  const double mean = s / double(n);
  double ss = 0;
  for (std::int64_t i = 0; i < n; ++i) ss += (xs[i] - mean) * (xs[i] - mean);
  const double std_x = std::sqrt(ss / double(n - 1));  // unbiased, as torch.std
  if (!(std_x > 0)) return;
  r = std::abs(float((double(r) * k + double(p.init_std_alpha) * std_x) / (k + 1.0)));
  k += 1.f;
}

}  // namespace aimc
