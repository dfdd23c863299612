// Batched sparse pulsed update (see pulsed_update.h).
#include "kernels/cpu/pulsed_update.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "kernels/cpu/parallel.h"
#include "kernels/cpu/random_fill.h"

namespace aimc::cpu {

using analog::PulseType;

std::uint64_t pulse_blocks(std::int64_t n, std::int64_t out, std::int64_t in) {
  return std::uint64_t(n) * std::uint64_t(out + in) * analog::kPulseBlocksPerLine;
}

std::uint64_t noise_blocks(std::int64_t n, std::int64_t out, std::int64_t in) {
  return std::uint64_t(n) * std::uint64_t(out) * std::uint64_t(in) * kNoiseBlocksPerElement;
}

namespace {

float abs_max(const float* v, std::int64_t size) {
  float m = 0.f;
  for (std::int64_t k = 0; k < size; ++k) m = std::max(m, std::abs(v[k]));
  return m;
}

// What one sample sends: for every line its pulse count or pulse train.
// Trains have `words` 32-bit words per line (pulse_words of the sample's BL).
struct SampleLines {
  int words = 1;
  std::vector<std::uint32_t> d_train;           // stochastic: slots that fire, [row][word]
  std::vector<float> d_value, x_value;          // deterministic: count (MEAN_COUNT) or probability (DET_IMPLICIT)
  std::vector<std::int32_t> active;             // columns that send anything
  std::vector<std::uint32_t> active_train;      // their trains (stochastic), [active][word]
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
        // Probabilities of the d lines then the x lines; the words they read
        // drawn in bulk (see analog::pulse_train).
        thread_local std::vector<float> prob;
        thread_local std::vector<std::uint64_t> blocks;
        thread_local std::vector<std::int64_t> drawn;  // line·W + word of each bulk block
        thread_local std::vector<std::uint32_t> words, train;
        const std::int64_t lines_n = out + in;
        const int W = analog::pulse_words(s.bl);
        L.words = W;
        prob.resize(lines_n);
        for (std::int64_t i = 0; i < out; ++i) prob[i] = analog::discretize(s.a * std::abs(d[i]), a.update.res);
        for (std::int64_t j = 0; j < in; ++j) prob[out + j] = analog::discretize(s.b * std::abs(x[j]), a.update.res);
        train.assign(lines_n * W, 0u);
        if (s.bl <= analog::kFewSlots) {
          const std::int64_t n_words = lines_n * s.bl, n_blocks = (n_words + 3) / 4;
          blocks.resize(n_blocks);
          for (std::int64_t k = 0; k < n_blocks; ++k) blocks[k] = base + std::uint64_t(k);
          words.resize(4 * n_blocks);
          philox_blocks(a.seed, a.pulse_stream, blocks.data(), n_blocks, words.data());
          for (std::int64_t l = 0; l < lines_n; ++l) train[l] = analog::pulse_train_few(prob[l], s.bl, &words[l * s.bl]);
        } else {
          // The first block of every word of every line strictly between 0 and 1 in bulk.
          blocks.clear();
          drawn.clear();
          for (std::int64_t l = 0; l < lines_n; ++l)
            for (int w = 0; w < W; ++w) {
              if (prob[l] >= 1.f) train[l * W + w] = analog::pulse_slots(analog::pulse_word_slots(s.bl, w));
              if (prob[l] > 0.f && prob[l] < 1.f) {
                drawn.push_back(l * W + w);
                blocks.push_back(analog::pulse_word_block(base, std::uint64_t(l), w));
              }
            }
          words.resize(4 * blocks.size());
          philox_blocks(a.seed, a.pulse_stream, blocks.data(), std::int64_t(blocks.size()), words.data());
          for (std::size_t k = 0; k < drawn.size(); ++k) {
            const std::int64_t l = drawn[k] / W;
            const int w = int(drawn[k] % W);
            const rng::Block first{{words[4 * k], words[4 * k + 1], words[4 * k + 2], words[4 * k + 3]}};
            train[drawn[k]] = analog::pulse_train_many(prob[l], analog::pulse_word_slots(s.bl, w), first, a.seed,
                                                       a.pulse_stream, blocks[k]);
          }
        }
        L.d_train.assign(train.begin(), train.begin() + out * W);
        const std::uint32_t* x_train = train.data() + out * W;
        for (std::int64_t j = 0; j < in; ++j) {
          std::uint32_t any = 0u;
          for (int w = 0; w < W; ++w) any |= x_train[j * W + w];
          if (any == 0u) continue;
          L.active.push_back(std::int32_t(j));
          for (int w = 0; w < W; ++w) L.active_train.push_back(x_train[j * W + w]);
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

  // 2. Coincidences, in parallel over rows; each row runs through the samples
  // in order. Per (row, sample): the coincident columns and their pulse
  // counts first, then all their normals in one bulk draw, then the pulses
  // applied column by column.
  std::atomic<std::int64_t> total{0};
  const bool noisy = a.law.dw_min_std > 0.f;
  parallel_for(0, out, grain_for(out, 4), [&](std::int64_t lo, std::int64_t hi) {
    std::int64_t pulses = 0;
    std::vector<std::int32_t> cols;
    std::vector<std::int32_t> counts, all_counts;
    std::vector<float> z;
    for (std::int64_t i = lo; i < hi; ++i) {
      float* w = a.w + i * in;
      for (std::int64_t m = 0; m < n; ++m) {
        const analog::PulseSchedule& s = schedule[m];
        const SampleLines& L = lines[m];
        if (s.bl == 0) continue;
        const float di = a.d[m * out + i];
        // Pulse counts of every listed column, then the coincident ones compacted.
        const std::size_t na = L.active.size();
        all_counts.resize(na);
        if (stochastic) {
          const int W = L.words;
          const std::uint32_t* dt = &L.d_train[i * W];
          std::uint32_t any = 0u;
          for (int w = 0; w < W; ++w) any |= dt[w];
          if (any == 0u) continue;
          const std::uint32_t* t = L.active_train.data();
          if (W == 1) {
            for (std::size_t k = 0; k < na; ++k) all_counts[k] = analog::popcount32(dt[0] & t[k]);
          } else {
            for (std::size_t k = 0; k < na; ++k) {
              int c = 0;
              for (int w = 0; w < W; ++w) c += analog::popcount32(dt[w] & t[k * W + w]);
              all_counts[k] = c;
            }
          }
        } else {
          const float d_value = L.d_value[i];
          if (d_value == 0.f) continue;
          for (std::size_t k = 0; k < na; ++k) {
            const float xv = L.x_value[L.active[k]];
            all_counts[k] = mean_count ? int(std::round(d_value / float(s.bl) * xv))
                                       : int(std::round(float(s.bl) * d_value * xv));
          }
        }
        const float* x = a.x + m * in;
        if (a.directions != analog::PulseDirections::Both) {
          // A one-sided device takes only the coincidences of one direction.
          const bool take_down = a.directions == analog::PulseDirections::DownAsUp;
          for (std::size_t k = 0; k < na; ++k)
            if (((di > 0.f) == (x[L.active[k]] > 0.f)) != take_down) all_counts[k] = 0;
        }
        cols.resize(na);
        counts.resize(na);
        std::size_t nc = 0;
        for (std::size_t k = 0; k < na; ++k) {
          cols[nc] = L.active[k];
          counts[nc] = all_counts[k];
          nc += all_counts[k] != 0;
        }
        if (nc == 0) continue;
        const std::uint64_t noise_row = a.noise_block + (std::uint64_t(m) * std::uint64_t(out) + std::uint64_t(i)) *
                                                            std::uint64_t(in) * kNoiseBlocksPerElement;
        // The cycle-to-cycle normals of this (row, sample): normal k of the
        // stream from block noise_row for its k-th pulse (columns in order).
        std::int64_t row_pulses = 0;
        for (std::size_t k = 0; k < nc; ++k) row_pulses += counts[k];
        if (noisy) {
          z.resize(std::size_t(row_pulses));
          fill_normal(a.seed, a.noise_stream, noise_row, row_pulses, z.data());
        }
        std::size_t next = 0;  // the next normal
        for (std::size_t k = 0; k < nc; ++k) {
          const std::int32_t j = cols[k];
          const int c = counts[k];
          // One-sided: the taken pulses are applied as up pulses.
          const bool down = a.directions == analog::PulseDirections::Both && (di > 0.f) == (x[j] > 0.f);
          const std::int64_t e_idx = i * in + j;
          const analog::PulsedElement e{a.max_bound[e_idx], a.min_bound[e_idx], a.up[e_idx], a.down[e_idx],
                                        a.p0 ? a.p0[e_idx] : 0.f, a.p1 ? a.p1[e_idx] : 0.f};
          float wk = w[j];
          for (int p = 0; p < c; ++p) wk = analog::pulsed_step(a.law, e, wk, down, noisy ? z[next++] : 0.f);
          w[j] = wk;
        }
        pulses += row_pulses;
      }
    }
    total += pulses;
  });
  return total.load();
}

void pulsed_post_update(const PulsedPostUpdateArgs& a) {
  if (!a.law.decay && !a.law.diffuse) return;
  parallel_for(0, a.size, grain_for(a.size, 4096), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t k = lo; k < hi; ++k)
      a.w[k] = analog::pulsed_post_update_element(a.law, a.w[k], a.max_bound[k], a.min_bound[k], a.scale[k],
                                                  a.bias[k], a.rate[k], a.seed, a.stream, a.block, std::uint64_t(k));
  });
}

}  // namespace aimc::cpu
