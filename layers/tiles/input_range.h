// Input ranges (REFERENCE.md section 3): the digital clip before a tile and
// its learned range r, shared by AnalogCore and the lightning-style forward.
// Units: layer-input units; r > 0.
#pragma once

#include "engine/tensor.h"
#include "layers/config/pre_post.h"

namespace aimc {

// v = clip(x, ±r) / r, differentiable: x gets dxc = g/r where |x| <= r and 0
// where clipped; r [1] gets
//   g_r = gradient_scale·(r if gradient_relative)·(Σ min(0, dxc·[x ≥ r]) − Σ max(0, dxc·[x ≤ −r]))
//         + decay·r·[mean(|x| < r) > input_min_percentage].
// Sums run serially in double (thread-count independent). ValueError when r
// is not finite and > 0.
Tensor input_range_clip(const Tensor& x, const Tensor& r, const InputRangeParameter& p);

// Data initialisation: r <- (r·k + init_std_alpha·std(x))/(k+1) with the
// unbiased std over all of x, while k < init_from_data and std(x) > 0; then
// k <- k + 1.
void update_input_range_from_data(const Tensor& x, const InputRangeParameter& p, float& r, float& k);

// The pieces both devices share (the CUDA kernels of kernels/cuda/
// input_range.cu return the sums): the range gradient g_r above from the sum
// of the clipped terms and the count inside the range over n inputs; and the
// data update from Σ(x − mean)² over n inputs.
double input_range_gradient(double clip_sum, double inside, std::int64_t n, float r, const InputRangeParameter& p);
void update_input_range_from_stats(double squared_deviation, std::int64_t n, const InputRangeParameter& p, float& r,
                                   float& k);

}  // namespace aimc
