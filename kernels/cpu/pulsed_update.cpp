// Batched sparse pulsed update (see pulsed_update.h).
#include "kernels/cpu/pulsed_update.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"

namespace aimc::cpu {

using analog::PulseType;

std::uint64_t pulse_blocks(std::int64_t n, std::int64_t out, std::int64_t in) {
  return std::uint64_t(n) * std::uint64_t(out + in) * analog::kPulseBlocksPerLine;
}

std::uint64_t noise_blocks(std::int64_t n, std::int64_t out, std::int64_t in) {
  return std::uint64_t(n) * std::uint64_t(out) * std::uint64_t(in) * 8u;
}

namespace {

float abs_max(const float* v, std::int64_t size) {
  float m = 0.f;
  for (std::int64_t k = 0; k < size; ++k) m = std::max(m, std::abs(v[k]));
  return m;
}

// What one sample sends: for every line its pulse count or pulse train and sign.
struct SampleLines {
  std::vector<std::uint32_t> d_train, x_train;  // stochastic: slots that fire
  std::vector<float> d_value, x_value;          // deterministic: count (MEAN_COUNT) or probability (DET_IMPLICIT)
  std::vector<std::int32_t> active;             // columns that send anything
};

}  // namespace

std::int64_t pulsed_update(const PulsedUpdateArgs& a) {
  const std::int64_t n = a.n, out = a.out, in = a.in;
  if (n == 0 || a.update.pulse_type == PulseType::None || !(a.lr > 0.f)) return 0;
  const bool stochastic =
      a.update.pulse_type == PulseType::StochasticCompressed || a.update.pulse_type == PulseType::Stochastic;
  const bool mean_count = a.update.pulse_type == PulseType::MeanCount;

  // 1. Schedules and pulse trains (or counts) of every sample, in parallel over samples.
  std::vector<analog::PulseSchedule> schedule(n);
  std::vector<SampleLines> lines(n);
  parallel_for(0, n, grain_for(n, 1), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t m = lo; m < hi; ++m) {
      const float* x = a.x + m * in;
      const float* d = a.d + m * out;
      const analog::PulseSchedule s =
          analog::pulse_schedule(a.update, abs_max(x, in), abs_max(d, out), a.lr, a.dw_min);
      schedule[m] = s;
      SampleLines& L = lines[m];
      if (s.bl == 0) continue;
      const std::uint64_t base = a.pulse_block + std::uint64_t(m) * std::uint64_t(out + in) * analog::kPulseBlocksPerLine;
      if (stochastic) {
        L.d_train.resize(out);
        L.x_train.resize(in);
        for (std::int64_t i = 0; i < out; ++i)
          L.d_train[i] = analog::pulse_train(analog::discretize(s.a * std::abs(d[i]), a.update.res), s.bl, a.seed,
                                             a.pulse_stream, base + std::uint64_t(i) * analog::kPulseBlocksPerLine);
        for (std::int64_t j = 0; j < in; ++j) {
          L.x_train[j] =
              analog::pulse_train(analog::discretize(s.b * std::abs(x[j]), a.update.res), s.bl, a.seed,
                                  a.pulse_stream, base + std::uint64_t(out + j) * analog::kPulseBlocksPerLine);
          if (L.x_train[j] != 0u) L.active.push_back(std::int32_t(j));
        }
      } else {
        // MEAN_COUNT: counts round(BL·p); DETERMINISTIC_IMPLICIT: probabilities p
        // (on the implicit resolution grids), both clipped to [0, BL] / [0, 1].
        const float d_res = mean_count ? a.update.res : a.update.d_res_implicit;
        const float x_res = mean_count ? a.update.res : a.update.x_res_implicit;
        auto value = [&](float p, float res) {
          p = std::min(1.f, std::max(0.f, analog::discretize(p, res)));
          return mean_count ? std::round(float(s.bl) * p) : p;
        };
        L.d_value.resize(out);
        L.x_value.resize(in);
        for (std::int64_t i = 0; i < out; ++i) L.d_value[i] = value(s.a * std::abs(d[i]), d_res);
        for (std::int64_t j = 0; j < in; ++j) {
          L.x_value[j] = value(s.b * std::abs(x[j]), x_res);
          if (L.x_value[j] != 0.f) L.active.push_back(std::int32_t(j));
        }
      }
    }
  });

  // 2. Coincidences, in parallel over rows; each row runs through the samples in order.
  std::atomic<std::int64_t> total{0};
  parallel_for(0, out, grain_for(out, 4), [&](std::int64_t lo, std::int64_t hi) {
    std::int64_t pulses = 0;
    for (std::int64_t i = lo; i < hi; ++i) {
      float* w = a.w + i * in;
      for (std::int64_t m = 0; m < n; ++m) {
        const analog::PulseSchedule& s = schedule[m];
        const SampleLines& L = lines[m];
        if (s.bl == 0) continue;
        const float di = a.d[m * out + i];
        std::uint32_t d_train = 0u;
        float d_value = 0.f;
        if (stochastic) {
          d_train = L.d_train[i];
          if (d_train == 0u) continue;
        } else {
          d_value = L.d_value[i];
          if (d_value == 0.f) continue;
        }
        const float* x = a.x + m * in;
        const std::uint64_t noise_row =
            a.noise_block + (std::uint64_t(m) * std::uint64_t(out) + std::uint64_t(i)) * std::uint64_t(in) * 8u;
        for (const std::int32_t j : L.active) {
          int c;
          if (stochastic) {
            c = analog::popcount32(d_train & L.x_train[j]);
          } else if (mean_count) {
            c = int(std::round(d_value / float(s.bl) * L.x_value[j]));
          } else {
            c = int(std::round(float(s.bl) * d_value * L.x_value[j]));
          }
          if (c == 0) continue;
          bool down = (di > 0.f) == (x[j] > 0.f);
          if (a.directions != analog::PulseDirections::Both) {
            if (down != (a.directions == analog::PulseDirections::DownAsUp)) continue;
            down = false;  // taken as an up pulse
          }
          const std::int64_t k = i * in + j;
          const analog::PulsedElement e{a.max_bound[k], a.min_bound[k], a.up[k], a.down[k],
                                        a.p0 ? a.p0[k] : 0.f, a.p1 ? a.p1[k] : 0.f};
          float wk = w[j];
          if (a.law.dw_min_std > 0.f) {
            const std::uint64_t block = noise_row + std::uint64_t(j) * 8u;
            float z[4];
            for (int p = 0; p < c; ++p) {
              if (p % 4 == 0) {
                const rng::Block b = rng::philox(a.seed, a.noise_stream, block + std::uint64_t(p / 4));
                rng::box_muller_fast(b.v[0], b.v[1], z[0], z[1]);
                rng::box_muller_fast(b.v[2], b.v[3], z[2], z[3]);
              }
              wk = analog::pulsed_step(a.law, e, wk, down, z[p % 4]);
            }
          } else {
            for (int p = 0; p < c; ++p) wk = analog::pulsed_step(a.law, e, wk, down, 0.f);
          }
          w[j] = wk;
          pulses += c;
        }
      }
    }
    total += pulses;
  });
  return total.load();
}

}  // namespace aimc::cpu
