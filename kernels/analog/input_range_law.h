// Per-element input-range formulas (REFERENCE.md section 3) shared by the CPU
// op (layers/tiles/input_range.cpp) and its CUDA twin (kernels/cuda/
// input_range.cu), and the fixed chunking of their double sums, so both
// devices add the same terms in the same order. Units: layer-input units.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/analog/periphery.h"

namespace aimc::analog {

// Sums over the elements run in chunks of this many, each chunk in element
// order, the chunks added in order: the same double for any thread count.
constexpr std::int64_t kInputRangeChunk = 1 << 15;

// The clip before the DAC: v = clip(x, ±r)/r.
AIMC_HD float input_range_value(float x, float r) { return clamp_value(x, -r, r) / r; }

// The gradient to x: g/r inside the range (|x| <= r), 0 where clipped.
AIMC_HD float input_range_dx(float x, float g, float r) { return std::fabs(x) <= r ? g / r : 0.f; }

// Element i's terms of the range gradient: clip += min(0, g/r) where x >= r
// and −max(0, g/r) where x <= −r; inside counts |x| < r (an integer: the
// same value as a double sum of ones, without its latency chain). The
// division runs only for clipped inputs, the few.
AIMC_HD void input_range_terms(float x, float g, float r, double& clip, std::int64_t& inside) {
  if (x >= r) {
    const double dxc = static_cast<double>(g) / r;
    clip += dxc < 0.0 ? dxc : 0.0;
  } else if (x <= -r) {
    const double dxc = static_cast<double>(g) / r;
    clip -= dxc > 0.0 ? dxc : 0.0;
  } else {
    inside += std::fabs(x) < r ? 1 : 0;  // (0 for NaN)
  }
}

// Both sums over one chunk [begin, end) in element order.
AIMC_HD void input_range_chunk_terms(const float* x, const float* g, std::int64_t begin, std::int64_t end, float r,
                                     double& clip, std::int64_t& inside) {
  clip = 0.0;
  inside = 0;
  for (std::int64_t i = begin; i < end; ++i) input_range_terms(x[i], g[i], r, clip, inside);
}

}  // namespace aimc::analog
