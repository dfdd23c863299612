// The batched pulsed update of one tile on the CPU (kernels/analog/pulsed_law.h):
// W ← W − lr·Σ_m d_m·x_mᵀ carried out by stochastic coincident pulses, one
// sample after the other (each sample has its own pulse schedule, as aihwkit).
//
// Sparse: for each sample the firing columns are listed once, and each row
// visits only the samples in which it fires and, for those, only the listed
// columns, so the cost follows the number of firing (row, sample) pairs
// times the firing columns, not rows × columns × slots.
//
// Deterministic: rows run in parallel (oneTBB) and every random number is
// addressed by what it is for: the pulse trains of sample m read the blocks
// from pulse_block + m·(out + in)·kPulseBlocksPerLine, line l as
// analog::pulse_train says (d lines l < out, x lines out + j). The pulses of
// row i over the mini-batch, counted sample after sample, in a sample over
// its coincident columns in increasing j (and a column's pulses in order),
// take the normals 0, 1, 2, ... of the stream from block row_noise_block(i)
// = noise_block + i·n·in·kNoiseBlocksPerElement (cpu::fill_normal's layout:
// four normals a block; a row has at most n·in·128 pulses, so the ranges
// never meet).
// The result has the same bits for any thread count, and the CUDA twin
// draws the same numbers.
//
// This file is compiled with -ffp-contract=off (kernels/meson.build) and its
// CUDA twin with --fmad=false, so no a·b + c of the step laws is fused into
// an fma on either side: both round every operation alike, and their results
// agree bit for bit (kernels/cuda/pulsed_update.cu).
#pragma once

#include <cstdint>

#include "kernels/analog/pulsed_law.h"
#include "kernels/analog/pulsed_post_update_law.h"

namespace aimc::cpu {

struct PulsedUpdateArgs {
  const float* x = nullptr;  // [n, in] layer inputs of the mini-batch
  const float* d = nullptr;  // [n, out] errors (gradients at the tile outputs)
  std::int64_t n = 0, out = 0, in = 0;
  float lr = 0.f;
  float dw_min = 0.f;  // the device's granularity: the schedule's unit step
  analog::UpdatePulseParams update;
  analog::PulsedLawParams law;
  float* w = nullptr;  // [out, in] weights, updated in place
  // [out, in] device-to-device values (p0, p1 may be null when the law has none).
  const float *max_bound = nullptr, *min_bound = nullptr, *up = nullptr, *down = nullptr;
  const float *p0 = nullptr, *p1 = nullptr;
  std::uint64_t seed = 0, pulse_stream = 0, noise_stream = 0;
  std::uint64_t pulse_block = 0, noise_block = 0;  // first blocks of this update
  analog::PulseDirections directions = analog::PulseDirections::Both;  // the coincidences taken
};

// Noise blocks a row reserves per (sample, column): 128 normals, enough for
// the most pulses one element can get in a sample (BL <= 128).
constexpr std::uint64_t kNoiseBlocksPerElement = 8 * analog::kMaxPulseWords;

// The first noise block of row i's normals (see above).
AIMC_HD std::uint64_t row_noise_block(const PulsedUpdateArgs& a, std::int64_t i) {
  return a.noise_block + std::uint64_t(i) * std::uint64_t(a.n) * std::uint64_t(a.in) * kNoiseBlocksPerElement;
}

// Blocks of the pulse and noise streams one update of this shape reserves
// (the counters advance by these whatever was used).
std::uint64_t pulse_blocks(std::int64_t n, std::int64_t out, std::int64_t in);
std::uint64_t noise_blocks(std::int64_t n, std::int64_t out, std::int64_t in);

// Applies the update; returns the number of pulses applied (coincidences).
std::int64_t pulsed_update(const PulsedUpdateArgs& args);

// The once-per-mini-batch decay and diffusion of a pulsed device
// (kernels/analog/pulsed_post_update_law.h) on size elements.
struct PulsedPostUpdateArgs {
  analog::PostUpdateLaw law;
  std::int64_t size = 0;
  float* w = nullptr;  // [size] weights, updated in place
  // [size] device-to-device values: bounds, decay scales, reset biases, diffusion rates.
  const float *max_bound = nullptr, *min_bound = nullptr, *scale = nullptr, *bias = nullptr, *rate = nullptr;
  std::uint64_t seed = 0, stream = 0, block = 0;  // the diffusion normals: element k reads normal k from block
};

// Applies it; the stream's counter advances by analog::post_update_blocks(law, size).
void pulsed_post_update(const PulsedPostUpdateArgs& args);

}  // namespace aimc::cpu
