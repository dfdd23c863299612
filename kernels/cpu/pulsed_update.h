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
// addressed by what it is for: the pulse train of line l in sample m reads
// blocks pulse_block + (m·(out + in) + l)·8 (d lines l < out, x lines
// out + j), and the k-th pulse of element (i, j) in sample m reads normal
// k of block noise_block + ((m·out + i)·in + j)·8. The result has the same
// bits for any thread count, and the CUDA twin draws the same numbers.
#pragma once

#include <cstdint>

#include "kernels/analog/pulsed_law.h"

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

// Blocks of the pulse and noise streams one update of this shape reserves
// (the counters advance by these whatever was used).
std::uint64_t pulse_blocks(std::int64_t n, std::int64_t out, std::int64_t in);
std::uint64_t noise_blocks(std::int64_t n, std::int64_t out, std::int64_t in);

// Applies the update; returns the number of pulses applied (coincidences).
std::int64_t pulsed_update(const PulsedUpdateArgs& args);

}  // namespace aimc::cpu
