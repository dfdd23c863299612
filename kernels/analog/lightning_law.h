// Per-element formulas of the lightning-style forward (REFERENCE.md section 4,
// layers/tiles/lightning_forward.h), shared by the CPU op and its CUDA twin
// (kernels/cuda/lightning.cu). Units: x in layer units, v = x/r in DAC units.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/analog/input_range_law.h"
#include "kernels/analog/periphery.h"
#include "kernels/random.h"

namespace aimc::analog {

// The forward settings of a lightning tile as plain numbers (built from a
// TorchInferenceRPUConfig by layers/tiles/lightning_forward.cpp).
struct LightningLaw {
  float inp_step = 0.f;      // DAC step (0: no input quantisation)
  float out_noise = 0.f;     // output noise out_noise/sqrt(C) in wmax units (0: off)
  float out_bound = 0.f;     // ADC bound in wmax units (<= 0: no clipping)
  float out_res_frac = 0.f;  // ADC step in units of 2·bound (0: no quantisation)
  bool per_row_wmax = false; // wmax per output row (LAYER_GAUSSIAN_PER_CHANNEL clip)
  AIMC_HD bool adc() const { return out_res_frac > 0.f || out_bound > 0.f; }
};

// DAC: res·round(v/res), round half to even.
AIMC_HD float lightning_dac(float v, float res) { return std::nearbyint(v / res) * res; }

// ADC of one output with bound b = out_bound·wmax: quantise with the step
// 2·b·res_frac (when quantise and b > 0), then clip to ±b (when clip).
AIMC_HD float lightning_adc(float z, float b, float res_frac, bool quantise, bool clip) {
  float v = z;
  if (quantise && b > 0.f) {
    const float step = 2.f * b * res_frac;
    v = std::nearbyint(v / step) * step;
  }
  return clip ? clamp_value(v, -b, b) : v;
}

// Normal j of Generator::normal(float) from `block` on (seed, stream): the
// double-precision Box-Muller of rng::box_muller on word pairs (0,1), (2,3).
AIMC_HD float generator_normal_at(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::uint64_t j) {
  const rng::Block b = rng::philox(seed, stream, block + j / 4);
  const int pair = static_cast<int>((j % 4) / 2);
  float z0, z1;
  rng::box_muller(rng::uniform_open(b.v[2 * pair]), rng::uniform_open(b.v[2 * pair + 1]), z0, z1);
  return (j % 2) ? z1 : z0;
}

}  // namespace aimc::analog
