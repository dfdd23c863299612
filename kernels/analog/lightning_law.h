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
// TorchInferenceRPUConfig by layers/tiles/lightning_forward.cpp). wmax is
// max|W| of a tile's stored weights, per output row or over the tile.
struct LightningLaw {
  float inp_step = 0.f;          // DAC step (0: no input quantisation)
  float out_noise = 0.f;         // output noise out_noise/sqrt(C) in wmax units (0: off)
  bool noise_per_row = false;    // output noise with the row's wmax (out_noise_per_channel)
  float out_bound = 0.f;         // ADC bound in wmax units (<= 0: no clipping)
  float out_res_frac = 0.f;      // ADC step in units of 2·bound (0: no quantisation)
  bool bound_per_row = false;    // ADC bound with the row's wmax (LAYER_GAUSSIAN_PER_CHANNEL clip)
  float quant_states = 0.f;      // weight quantisation: number of states n (0: off; train and eval)
  bool quant_per_row = false;    // weight quantisation step from the row's wmax (DISCRETIZE_PER_CHANNEL)
  float weight_noise = 0.f;      // additive weight noise std in wmax units (training only; 0: off)
  bool weight_noise_per_row = false;  // weight noise with the row's wmax (ADD_NORMAL_PER_CHANNEL)
  AIMC_HD bool adc() const { return out_res_frac > 0.f || out_bound > 0.f; }
  AIMC_HD bool modifies() const { return quant_states > 0.f || weight_noise > 0.f; }
  AIMC_HD bool needs_wmax() const { return out_noise > 0.f || adc() || modifies(); }
};

// DAC: res·round(v/res), round half to even.
AIMC_HD float lightning_dac(float v, float res) { return std::nearbyint(v / res) * res; }

// Weight quantisation step for n states: 2·wmax/n (the full range ±wmax in n steps).
AIMC_HD float lightning_weight_step(float wmax, float n_states) { return 2.f * (wmax / n_states); }

// Quantised weight: round(clamp(w/step, ±n/2))·step, half to even (lightning's
// UniformQuantize with max_quant_state n/2); step 0 (an all-zero row) keeps w.
AIMC_HD float lightning_discretize(float w, float step, float n_states) {
  if (!(step > 0.f)) return w;
  const float half = 0.5f * n_states;
  return std::nearbyint(clamp_value(w / step, -half, half)) * step;
}

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

// Whether the ADC clip (bound b) cuts the quantised output q: its gradient is
// then zero (the clamp's), else it passes straight through.
AIMC_HD bool lightning_adc_clipped(float q, float b) { return std::fabs(q) > b; }

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
