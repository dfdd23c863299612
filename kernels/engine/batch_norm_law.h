// Per-channel and per-element math of batch_norm, shared by the CPU op
// (engine/ops_norm.cpp) and its CUDA kernels (kernels/cuda/batch_norm.cu),
// so both compute the same expressions in double (both built without fused
// multiply-adds). Normalising: y = x·scale + shift (in the tensor's type)
// with 1/σ = 1/sqrt(var + eps), scale = w/σ, shift = b - mean·w/σ.
// Backward through the batch statistics (training) or constants (eval):
//   dx = (w/σ)·(dy - mean(dy) - x̂·mean(dy·x̂)), x̂ = (x - mean)/σ,
// with the two means 0 in eval.
#pragma once

#include <cmath>

#include "kernels/random.h"  // AIMC_HD

namespace aimc::batch_norm_law {

struct ChannelAffine {
  double inv_std, scale, shift;
};

// The affine map of one channel from its statistics and parameters (host side).
inline ChannelAffine channel_affine(double mean, double var, double w, double b, double eps) {
  const double inv_std = 1.0 / std::sqrt(var + eps);
  return {inv_std, w * inv_std, b - mean * w * inv_std};
}

// x̂ = (x - mean)/σ.
AIMC_HD double normalized(double x, double mean, double inv_std) { return (x - mean) * inv_std; }

// dx for one element: scale = w/σ, and the channel's mean(dy) and mean(dy·x̂) (0 in eval).
AIMC_HD double input_grad(double g, double xhat, double scale, double mean_dy, double mean_dy_xhat) {
  return scale * (g - mean_dy - xhat * mean_dy_xhat);
}

}  // namespace aimc::batch_norm_law
