// CUDA twins of the pulsed update of an analog tile and of the pulsed
// devices' per-mini-batch decay and diffusion (kernels/cpu/pulsed_update.h).
//
// Two kernels per update. pulse_lines_kernel, one block per sample: the abs
// maxima of x_m and d_m (a block reduction; max does not depend on the
// order), the sample's pulse schedule, then the pulse train (stochastic
// types) or the clipped count / probability (MEAN_COUNT,
// DETERMINISTIC_IMPLICIT) of each of its out + in lines. pulse_rows_kernel,
// one thread per row: the samples in order, and in each the coincidences of
// the row one pulse after the other through analog::pulsed_step, with the
// cycle-to-cycle normals of the CPU's layout (a row's pulses number its
// normals, so a row is one thread; a faster split is issue 11's).
//
// What is bitwise, and why: every random number is addressed by what it is
// for (the same pulse_train blocks per (sample, line), the same noise
// normals per row and pulse, box_muller_fast's IEEE-exact normals), the schedule,
// probabilities and counts come from the same shared functions
// (kernels/analog/pulsed_law.h), and each element sees its pulses in the
// CPU's order. This file is compiled with --fmad=false and the CPU kernel
// with -ffp-contract=off (kernels/meson.build), so neither side fuses an
// a·b + c of a step law into an fma, and sqrtf, division and roundf are
// correctly rounded on both. The weights after an update therefore equal the
// CPU's bit for bit, for every pulse type and every law pulsed_step knows;
// so do the decay and diffusion of pulsed_post_update.
#include "kernels/cuda/buffer.cuh"

#include <algorithm>
#include <vector>

#include "kernels/analog/pulsed_law.h"
#include "kernels/analog/pulsed_post_update_law.h"
#include "kernels/cpu/pulsed_update.h"

namespace aimc::cuda {
namespace {

using analog::PulseType;

constexpr unsigned kThreads = 256;  // a power of two (the block reductions halve it)

AIMC_HD bool is_stochastic(PulseType t) {
  return t == PulseType::StochasticCompressed || t == PulseType::Stochastic;
}

// std::max(a, b) and std::min(a, b), NaN cases included.
AIMC_HD float max_of(float a, float b) { return a < b ? b : a; }
AIMC_HD float min_of(float a, float b) { return b < a ? b : a; }

// Lines of sample m: d lines l < out, x lines out + j, at m·(out + in) + l of
// `trains` (stochastic) or `values` (deterministic types).
__global__ void pulse_lines_kernel(cpu::PulsedUpdateArgs a, analog::PulseSchedule* schedule, std::uint32_t* trains,
                                   float* values, int max_words) {
  __shared__ float x_max[kThreads];
  __shared__ float d_max[kThreads];
  const std::int64_t out = a.out, in = a.in, lines = out + in;
  const unsigned t = threadIdx.x;
  const bool stochastic = is_stochastic(a.update.pulse_type);
  const bool mean_count = a.update.pulse_type == PulseType::MeanCount;
  const float d_res = mean_count ? a.update.res : a.update.d_res_implicit;
  const float x_res = mean_count ? a.update.res : a.update.x_res_implicit;
  for (std::int64_t m = blockIdx.x; m < a.n; m += gridDim.x) {
    const float* x = a.x + m * in;
    const float* d = a.d + m * out;
    float xm = 0.f, dm = 0.f;
    for (std::int64_t j = t; j < in; j += blockDim.x) xm = max_of(xm, ::fabsf(x[j]));
    for (std::int64_t i = t; i < out; i += blockDim.x) dm = max_of(dm, ::fabsf(d[i]));
    x_max[t] = xm;
    d_max[t] = dm;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
      if (t < s) {
        x_max[t] = max_of(x_max[t], x_max[t + s]);
        d_max[t] = max_of(d_max[t], d_max[t + s]);
      }
      __syncthreads();
    }
    const analog::PulseSchedule s = analog::pulse_schedule(a.update, x_max[0], d_max[0], a.lr, a.dw_min);
    __syncthreads();  // all have read the maxima before the next sample writes them
    if (t == 0) schedule[m] = s;
    if (s.bl == 0) continue;
    const std::uint64_t base = a.pulse_block + std::uint64_t(m) * std::uint64_t(lines) * analog::kPulseBlocksPerLine;
    for (std::int64_t l = t; l < lines; l += blockDim.x) {
      const bool is_d = l < out;
      const float p = (is_d ? s.a : s.b) * ::fabsf(is_d ? d[l] : x[l - out]);
      if (stochastic) {
        const int W = analog::pulse_words(s.bl);
        for (int w = 0; w < W; ++w)
          trains[(m * lines + l) * max_words + w] =
              analog::pulse_train(analog::discretize(p, a.update.res), s.bl, a.seed, a.pulse_stream, base, l, w);
      } else {
        const float q = min_of(1.f, max_of(0.f, analog::discretize(p, is_d ? d_res : x_res)));
        values[m * lines + l] = mean_count ? ::roundf(float(s.bl) * q) : q;
      }
    }
  }
}

// Every row through the samples in order, and in each its coincident columns
// in increasing j: the k-th pulse of row i in the mini-batch takes normal k
// of the stream from the row's block, as on the CPU. Block b adds its pulses
// into block_pulses[b] (when not null).
__global__ void pulse_rows_kernel(cpu::PulsedUpdateArgs a, const analog::PulseSchedule* schedule,
                                  const std::uint32_t* trains, const float* values, int max_words,
                                  long long* block_pulses) {
  __shared__ long long counted[kThreads];
  const std::int64_t out = a.out, in = a.in, lines = out + in;
  const bool stochastic = is_stochastic(a.update.pulse_type);
  const bool mean_count = a.update.pulse_type == PulseType::MeanCount;
  long long pulses = 0;
  AIMC_GRID_STRIDE(i, out) {
    float* w = a.w + i * in;
    const std::uint64_t row_block = cpu::row_noise_block(a, i);
    std::uint64_t next = 0;  // the row's next normal
    for (std::int64_t m = 0; m < a.n; ++m) {
      const analog::PulseSchedule s = schedule[m];
      if (s.bl == 0) continue;
      const std::int64_t row = m * lines;
      const float di = a.d[m * out + i];
      for (std::int64_t j = 0; j < in; ++j) {
        int c;
        if (stochastic) {
          c = 0;
          for (int w = 0; w < analog::pulse_words(s.bl); ++w)
            c += analog::popcount32(trains[(row + i) * max_words + w] & trains[(row + out + j) * max_words + w]);
        } else {
          const float dv = values[row + i], xv = values[row + out + j];
          if (dv == 0.f || xv == 0.f) continue;
          c = mean_count ? int(::roundf(dv / float(s.bl) * xv)) : int(::roundf(float(s.bl) * dv * xv));
        }
        if (c == 0) continue;
        bool down = (di > 0.f) == (a.x[m * in + j] > 0.f);
        if (a.directions != analog::PulseDirections::Both) {
          // A one-sided device takes only one direction's coincidences, as up pulses.
          if (down != (a.directions == analog::PulseDirections::DownAsUp)) continue;
          down = false;
        }
        const std::int64_t k = i * in + j;
        const analog::PulsedElement e{a.max_bound[k], a.min_bound[k], a.up[k], a.down[k], a.p0 ? a.p0[k] : 0.f,
                                      a.p1 ? a.p1[k] : 0.f};
        float wk = w[j];
        for (int p = 0; p < c; ++p) {
          const float xi =
              a.law.dw_min_std > 0.f ? rng::normal_at(a.seed, a.noise_stream, row_block, next++) : 0.f;
          wk = analog::pulsed_step(a.law, e, wk, down, xi);
        }
        w[j] = wk;
        pulses += c;
      }
    }
  }
  if (block_pulses == nullptr) return;  // the same for every thread
  const unsigned t = threadIdx.x;
  counted[t] = pulses;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) counted[t] += counted[t + s];
    __syncthreads();
  }
  if (t == 0) block_pulses[blockIdx.x] = counted[0];
}

__global__ void post_update_kernel(cpu::PulsedPostUpdateArgs a) {
  AIMC_GRID_STRIDE(k, a.size) {
    a.w[k] = analog::pulsed_post_update_element(a.law, a.w[k], a.max_bound[k], a.min_bound[k], a.scale[k], a.bias[k],
                                                a.rate[k], a.seed, a.stream, a.block, std::uint64_t(k));
  }
}

}  // namespace

void pulsed_update(const cpu::PulsedUpdateArgs& a, std::int64_t* pulses) {
  if (pulses) *pulses = 0;
  const std::int64_t size = a.out * a.in;
  if (a.n <= 0 || size <= 0 || a.update.pulse_type == PulseType::None || !(a.lr > 0.f)) return;
  const bool stochastic = is_stochastic(a.update.pulse_type);
  const std::size_t lines = std::size_t(a.n) * std::size_t(a.out + a.in);
  Buffer<analog::PulseSchedule> schedule(std::size_t(a.n));
  const int max_words = analog::max_pulse_words(a.update);
  Buffer<std::uint32_t> trains(stochastic ? lines * std::size_t(max_words) : 0);
  Buffer<float> values(stochastic ? 0 : lines);
  AIMC_LAUNCH(pulse_lines_kernel, grid_for(std::size_t(a.n), 1), kThreads)(a, schedule.get(), trains.get(),
                                                                             values.get(), max_words);
  launched("pulsed_update lines kernel launch");
  // Counting: at most 1024 blocks (the grid-stride loop covers the rest), each
  // writing its own partial sum; the host adds them.
  const unsigned grid = pulses ? std::min(blocks_for(a.out), 1024u) : blocks_for(a.out);
  std::vector<long long> partial(pulses ? grid : 0, 0);
  Buffer<long long> block_pulses(partial.size());
  block_pulses.upload(partial.data(), partial.size());
  AIMC_LAUNCH(pulse_rows_kernel, grid, kThreads)(a, schedule.get(), trains.get(), values.get(), max_words,
                                                 block_pulses.get());
  launched("pulsed_update rows kernel launch");
  if (!pulses) return;
  block_pulses.download(partial.data(), partial.size());
  for (const long long v : partial) *pulses += v;
}

void pulsed_post_update(const cpu::PulsedPostUpdateArgs& a) {
  if ((!a.law.decay && !a.law.diffuse) || a.size <= 0) return;
  AIMC_LAUNCH(post_update_kernel, blocks_for(a.size), kThreads)(a);
  launched("pulsed_post_update kernel launch");
}

}  // namespace aimc::cuda
