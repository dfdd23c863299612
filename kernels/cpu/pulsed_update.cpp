// Batched sparse pulsed update (see pulsed_update.h).
#include "kernels/cpu/pulsed_update.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/cpu/abs_max.h"
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

// probability[k] = discretize(scale·|v_k|, res) for k < size.
void probabilities(const float* v, std::int64_t size, float scale, float res, float* probability) {
  if (res > 0.f) {
    for (std::int64_t k = 0; k < size; ++k) probability[k] = analog::discretize(scale * std::abs(v[k]), res);
  } else {
    for (std::int64_t k = 0; k < size; ++k) probability[k] = scale * std::abs(v[k]);
  }
}

// What the samples send. Per sample m: its schedule, and its active
// columns (those that fire at all) in increasing j, at m·in + k: the column,
// its train (stochastic: `words` words from (m·in + k)·words) or value
// (MEAN_COUNT: count, DETERMINISTIC_IMPLICIT: probability), and whether
// x_j > 0. Per row i: its train or value in sample m at i·n + m, so a row
// scans its samples contiguously.
struct Lines {
  int words = 1;
  std::vector<analog::PulseSchedule> schedule;  // [n]
  std::vector<std::uint32_t> d_train, x_train;
  std::vector<float> d_value, x_value;
  std::vector<std::int32_t> x_col, x_count;
  std::vector<std::uint8_t> x_positive;
};

// A Lines workspace for the duration of one update, reused from earlier
// updates (their buffers keep their pages: no page faults per update). A
// pool rather than thread_local: a thread waiting in one update's parallel
// loop may start another update.
class PooledLines {
 public:
  PooledLines() {
    const std::lock_guard<std::mutex> lock(mutex());
    auto& free = pool();
    if (free.empty()) {
      lines = new Lines;
    } else {
      lines = free.back().release();
      free.pop_back();
    }
  }
  ~PooledLines() {
    const std::lock_guard<std::mutex> lock(mutex());
    pool().emplace_back(lines);
  }
  PooledLines(const PooledLines&) = delete;
  PooledLines& operator=(const PooledLines&) = delete;
  Lines* lines;

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::unique_ptr<Lines>>& pool() {
    static std::vector<std::unique_ptr<Lines>> free;
    return free;
  }
};

// The loop after it has no dependences between iterations (vectorise it).
#if defined(__clang__)
// The laws with branches and exp/pow (ExpStep, PowStep, PiecewiseStep) stay
// scalar; clang would warn for each that it could not vectorise.
#pragma clang diagnostic ignored "-Wpass-failed"
#define AIMC_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#elif defined(__GNUC__)
#define AIMC_IVDEP _Pragma("GCC ivdep")
#else
#define AIMC_IVDEP
#endif

// Calls f.template operator()<L>() with the run-time law as L.
template <typename F>
void with_law(analog::PulsedLaw law, F&& f) {
  using analog::PulsedLaw;
  switch (law) {
    case PulsedLaw::LinearStep: return f.template operator()<PulsedLaw::LinearStep>();
    case PulsedLaw::SoftBounds: return f.template operator()<PulsedLaw::SoftBounds>();
    case PulsedLaw::ExpStep: return f.template operator()<PulsedLaw::ExpStep>();
    case PulsedLaw::PowStep: return f.template operator()<PulsedLaw::PowStep>();
    case PulsedLaw::PiecewiseStep: return f.template operator()<PulsedLaw::PiecewiseStep>();
    case PulsedLaw::Ideal: return f.template operator()<PulsedLaw::Ideal>();
    case PulsedLaw::SoftBoundsReference: return f.template operator()<PulsedLaw::SoftBoundsReference>();
    case PulsedLaw::ConstantStep: return f.template operator()<PulsedLaw::ConstantStep>();
  }
}

// The coincidences of one row over a mini-batch: one group per sample that
// fires the row, in sample order. A group holds the sample's active columns
// (col, Lines::x_col) with their pulse counts (0 where the column does not
// coincide, or its direction is one a one-sided device does not take), the
// directions, and where each column's normals start among the group's
// (first); the group's normals start at z_begin among the row's. A unit
// group (a sample with BL 1 on a two-sided device: every active column
// coincides once) keeps no counts: its directions come from the signs.
struct RowPulses {
  struct Group {
    const std::int32_t* col;
    std::int64_t begin, size;  // its entries in count / down / first
    std::int64_t z_begin;
    std::int32_t pulses, most;  // its pulses (at most in·128) and most pulses of one column
    const std::uint8_t* x_positive = nullptr;  // unit groups: column k's x > 0
    bool d_positive = false;                   // unit groups: the row's d > 0
  };
  std::vector<Group> groups;
  std::vector<std::int32_t> count, down, first;
  std::vector<float> z;  // the row's normals
  std::int64_t pulses = 0;
  std::int64_t used = 0;  // entries of count / down / first taken by groups

  void clear() {
    groups.clear();
    pulses = 0;
    used = 0;
  }
  // Room for a group of na entries; returns its first entry.
  std::int64_t reserve(std::size_t na) {
    const std::size_t need = std::size_t(used) + na;
    if (count.size() < need) count.resize(need), down.resize(need), first.resize(need);
    return used;
  }
  // Adds the group whose counts were written at `begin`: sets its
  // directions (d_positive: the row's d > 0; x_positive[k]: column k's x > 0)
  // and drops the counts of the direction a one-sided device does not take,
  // then numbers the normals.
  void add(const std::int32_t* col, const std::uint8_t* x_positive, std::int64_t begin, std::size_t na,
           bool d_positive, analog::PulseDirections directions) {
    std::int32_t* c = &count[begin];
    std::int32_t* dn = &down[begin];
    std::int32_t* f = &first[begin];
    const bool both = directions == analog::PulseDirections::Both;
    const bool take_down = directions == analog::PulseDirections::DownAsUp;
    std::int32_t next = 0, most = 0;
    for (std::size_t k = 0; k < na; ++k) {
      const bool is_down = d_positive == (x_positive[k] != 0);
      const std::int32_t ck = (both || is_down == take_down) ? c[k] : 0;
      c[k] = ck;
      dn[k] = both && is_down;
      f[k] = next;
      next += ck;
      most = std::max(most, ck);
    }
    if (next == 0) return;
    used = begin + std::int64_t(na);
    groups.push_back({col, begin, std::int64_t(na), pulses, next, most});
    pulses += next;
  }
  // Adds the unit group of na active columns (na > 0).
  void add_unit(const std::int32_t* col, const std::uint8_t* x_positive, std::size_t na, bool d_positive) {
    groups.push_back({col, 0, std::int64_t(na), pulses, std::int32_t(na), 1, x_positive, d_positive});
    pulses += std::int64_t(na);
  }
};

// The pulses of row i under law Law (with cycle-to-cycle normals when
// Noisy). Within a group the columns are distinct, so its elements are
// independent and the loop vectorises (gathers and scatters); pass p applies
// every column's pulse p, a column with fewer pulses keeping its w.
template <analog::PulsedLaw Law, bool Noisy>
void apply_row(const PulsedUpdateArgs& a, std::int64_t i, const RowPulses& r) {
  const std::int64_t row = i * a.in;
  float* w = a.w + row;
  const float *mx = a.max_bound + row, *mn = a.min_bound + row, *up = a.up + row, *dn = a.down + row;
  const float* p0 = analog::law_reads_p0<Law> ? a.p0 + row : nullptr;
  const float* p1 = analog::law_reads_p1<Law> ? a.p1 + row : nullptr;
  // Column j's device-to-device values (only those the law reads).
  auto element = [&](std::int32_t j) {
    analog::PulsedElement e{mx[j], mn[j], up[j], dn[j], 0.f, 0.f};
    if constexpr (analog::law_reads_p0<Law>) e.p0 = p0[j];
    if constexpr (analog::law_reads_p1<Law>) e.p1 = p1[j];
    return e;
  };
  for (const RowPulses::Group& g : r.groups) {
    const std::int32_t* col = g.col;
    // Pointer arithmetic, not operator[]: a row of unit groups only has empty count / first / down.
    const std::int32_t *count = r.count.data() + g.begin, *first = r.first.data() + g.begin,
                       *down = r.down.data() + g.begin;
    const float* z = Noisy ? r.z.data() + g.z_begin : nullptr;
    if (g.x_positive) {
      // A unit group: one pulse on every column, down where x and d agree in sign.
      const std::uint8_t* positive = g.x_positive;
      const bool d_positive = g.d_positive;
      AIMC_IVDEP
      for (std::int64_t k = 0; k < g.size; ++k) {
        const std::int32_t j = col[k];
        const bool is_down = (positive[k] != 0) == d_positive;
        w[j] = analog::pulsed_step_as<Law>(a.law, element(j), w[j], is_down, Noisy ? z[k] : 0.f);
      }
      continue;
    }
    if (g.most == 1 && g.pulses == g.size) {
      // One pulse on every column (as with BL 1): normal k is column k's.
      AIMC_IVDEP
      for (std::int64_t k = 0; k < g.size; ++k) {
        const std::int32_t j = col[k];
        w[j] = analog::pulsed_step_as<Law>(a.law, element(j), w[j], down[k] != 0, Noisy ? z[k] : 0.f);
      }
      continue;
    }
    const std::int32_t last = g.pulses - 1;  // keeps the unused reads of finished columns inside z
    for (std::int32_t p = 0; p < g.most; ++p) {
      AIMC_IVDEP
      for (std::int64_t k = 0; k < g.size; ++k) {
        const std::int32_t j = col[k];
        float xi = 0.f;
        if constexpr (Noisy) xi = z[std::min(first[k] + p, last)];
        const float moved = analog::pulsed_step_as<Law>(a.law, element(j), w[j], down[k] != 0, xi);
        w[j] = p < count[k] ? moved : w[j];
      }
    }
  }
}

// One-word trains: the columns j < in with t[j] != 0, in increasing j, as
// their train, index and x_j > 0 at train / col / positive[0 .. count);
// returns the count. Writes nothing beyond it (samples fill their slices
// in parallel).
std::int64_t compact_active(const std::uint32_t* t, const float* x, std::int64_t in, std::uint32_t* train,
                            std::int32_t* col, std::uint8_t* positive) {
  std::int64_t na = 0, j = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__BMI2__)
  // 16 columns a step: compress the active lanes, store only those.
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  for (; j < in; j += 16) {
    const __mmask16 lanes = in - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (in - j)) - 1u);
    const __m512i tv = _mm512_maskz_loadu_epi32(lanes, t + j);
    const __mmask16 active = _mm512_mask_test_epi32_mask(lanes, tv, tv);
    const __mmask16 gt = _mm512_mask_cmp_ps_mask(lanes, _mm512_maskz_loadu_ps(lanes, x + j), _mm512_setzero_ps(),
                                                _CMP_GT_OQ);
    const unsigned count = unsigned(std::popcount(unsigned(active)));
    const __mmask16 out = __mmask16((1u << count) - 1u);
    _mm512_mask_storeu_epi32(train + na, out, _mm512_maskz_compress_epi32(active, tv));
    _mm512_mask_storeu_epi32(col + na, out,
                             _mm512_maskz_compress_epi32(active, _mm512_add_epi32(iota, _mm512_set1_epi32(int(j)))));
    const __mmask16 pos = __mmask16(_pext_u32(unsigned(gt), unsigned(active)));
    _mm_mask_storeu_epi8(positive + na, out, _mm_maskz_mov_epi8(pos, _mm_set1_epi8(1)));
    na += count;
  }
#else
  for (; j < in; ++j) {
    train[na] = t[j];
    col[na] = std::int32_t(j);
    positive[na] = x[j] > 0.f;
    na += t[j] != 0u;
  }
#endif
  return na;
}

// The trains of one sample's lines_n lines (probabilities prob) for a
// bl-slot schedule, W words per line into train (zeroed), drawn from the
// sample's blocks from `base` (analog::pulse_train's addressing).
void sample_trains(const PulsedUpdateArgs& a, int bl, std::uint64_t base, const float* prob, std::int64_t lines_n,
                   int W, std::uint32_t* train) {
  thread_local std::vector<std::uint64_t> blocks;
  thread_local std::vector<std::int64_t> drawn;  // line·W + word of each bulk block
  thread_local std::vector<std::uint32_t> words;
  if (bl <= analog::kFewSlots) {
    // The lines share the sample's words: line l reads words l·bl .. l·bl + bl − 1.
    const std::int64_t n_words = lines_n * bl, n_blocks = (n_words + 3) / 4;
    blocks.resize(n_blocks);
    for (std::int64_t k = 0; k < n_blocks; ++k) blocks[k] = base + std::uint64_t(k);
    words.resize(4 * n_blocks);
    philox_blocks(a.seed, a.pulse_stream, blocks.data(), n_blocks, words.data());
    if (bl == 1) {
      for (std::int64_t l = 0; l < lines_n; ++l) train[l * W] = analog::pulse_train_one(prob[l], words[l]);
    } else {
      for (std::int64_t l = 0; l < lines_n; ++l) train[l * W] = analog::pulse_train_few(prob[l], bl, &words[l * bl]);
    }
    return;
  }
  // Many slots: the first block of every word of every line strictly between
  // 0 and 1 in bulk, the rest as analog::pulse_train_many needs them.
  const int words_used = analog::pulse_words(bl);
  blocks.clear();
  drawn.clear();
  for (std::int64_t l = 0; l < lines_n; ++l)
    for (int w = 0; w < words_used; ++w) {
      if (prob[l] >= 1.f) train[l * W + w] = analog::pulse_slots(analog::pulse_word_slots(bl, w));
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
    train[drawn[k]] =
        analog::pulse_train_many(prob[l], analog::pulse_word_slots(bl, w), first, a.seed, a.pulse_stream, blocks[k]);
  }
}

}  // namespace

std::int64_t pulsed_update(const PulsedUpdateArgs& a) {
  const std::int64_t n = a.n, out = a.out, in = a.in;
  if (n == 0 || a.update.pulse_type == PulseType::None || !(a.lr > 0.f)) return 0;
  const bool stochastic =
      a.update.pulse_type == PulseType::StochasticCompressed || a.update.pulse_type == PulseType::Stochastic;
  const bool mean_count = a.update.pulse_type == PulseType::MeanCount;

  // 1. Schedules of every sample, then their pulse trains (or counts), in
  // parallel over samples. Trains have as many words as the longest needs.
  const PooledLines pooled;
  Lines& L = *pooled.lines;
  L.schedule.resize(n);
  parallel_for(0, n, grain_for(n, 4), [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t m = lo; m < hi; ++m)
      L.schedule[m] = analog::pulse_schedule(a.update, abs_max_skipping_nan(a.x + m * in, in),
                                             abs_max_skipping_nan(a.d + m * out, out), a.lr, a.dw_min);
  });
  int W = 1;
  for (const analog::PulseSchedule& s : L.schedule) W = std::max(W, analog::pulse_words(s.bl));
  L.words = W;
  L.x_col.resize(n * in);
  L.x_positive.resize(n * in);
  L.x_count.assign(n, 0);
  if (stochastic) {
    L.d_train.assign(out * n * W, 0u);
    L.x_train.resize(n * in * W);
  } else {
    L.d_value.assign(out * n, 0.f);
    L.x_value.resize(n * in);
  }
  parallel_for(0, n, grain_for(n, 1), [&](std::int64_t lo, std::int64_t hi) {
    thread_local std::vector<std::uint32_t> train;  // the sample's trains: d lines then x lines, W words each
    thread_local std::vector<float> prob;
    for (std::int64_t m = lo; m < hi; ++m) {
      const float* x = a.x + m * in;
      const float* d = a.d + m * out;
      const analog::PulseSchedule s = L.schedule[m];
      if (s.bl == 0) continue;
      std::int32_t* col = &L.x_col[m * in];
      std::uint8_t* positive = &L.x_positive[m * in];
      std::int64_t na = 0;
      if (stochastic) {
        // Probabilities of the d lines then the x lines, then their trains.
        const std::int64_t lines_n = out + in;
        prob.resize(lines_n);
        probabilities(d, out, s.a, a.update.res, prob.data());
        probabilities(x, in, s.b, a.update.res, prob.data() + out);
        train.assign(lines_n * W, 0u);
        const std::uint64_t base = a.pulse_block + std::uint64_t(m) * std::uint64_t(lines_n) * analog::kPulseBlocksPerLine;
        sample_trains(a, s.bl, base, prob.data(), lines_n, W, train.data());
        // Row i's train in sample m goes to (i·n + m)·W (rows scan their samples).
        std::uint32_t* d_train = L.d_train.data();
        const std::uint32_t* dt = train.data();
        if (W == 1) {
          for (std::int64_t i = 0; i < out; ++i) d_train[i * n + m] = dt[i];
        } else {
          const std::int64_t words = W;  // a local: the stores cannot change it
          for (std::int64_t i = 0; i < out; ++i)
            for (std::int64_t w = 0; w < words; ++w) d_train[(i * n + m) * words + w] = dt[i * words + w];
        }
        // The active columns, compacted.
        const std::uint32_t* xt = train.data() + out * W;
        std::uint32_t* x_train = &L.x_train[m * in * W];
        if (W == 1) {
          na = compact_active(xt, x, in, x_train, col, positive);
        } else {
          for (std::int64_t j = 0; j < in; ++j) {
            std::uint32_t any = 0u;
            for (int w = 0; w < W; ++w) {
              any |= xt[j * W + w];
              x_train[na * W + w] = xt[j * W + w];
            }
            col[na] = std::int32_t(j);
            positive[na] = x[j] > 0.f;
            na += any != 0u;
          }
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
        for (std::int64_t i = 0; i < out; ++i) L.d_value[i * n + m] = value(s.a * std::abs(d[i]), d_res);
        float* x_value = &L.x_value[m * in];
        for (std::int64_t j = 0; j < in; ++j) {
          const float v = value(s.b * std::abs(x[j]), x_res);
          x_value[na] = v;
          col[na] = std::int32_t(j);
          positive[na] = x[j] > 0.f;
          na += v != 0.f;
        }
      }
      L.x_count[m] = std::int32_t(na);
    }
  });

  // 2. Coincidences, in parallel over rows; each row runs through the samples
  // in order: first the coincidences of all its samples (RowPulses), then all
  // their normals in one bulk draw, then the pulses, sample after sample.
  std::atomic<std::int64_t> total{0};
  const bool noisy = a.law.dw_min_std > 0.f;
  parallel_for(0, out, grain_for(out, 4), [&](std::int64_t lo, std::int64_t hi) {
    std::int64_t pulses = 0;
    thread_local RowPulses r;  // reused: no allocation per update
    for (std::int64_t i = lo; i < hi; ++i) {
      r.clear();
      for (std::int64_t m = 0; m < n; ++m) {
        const analog::PulseSchedule& s = L.schedule[m];
        if (s.bl == 0) continue;
        const std::size_t na = std::size_t(L.x_count[m]);
        // Pulse counts of every active column.
        std::int64_t begin;
        if (stochastic) {
          const std::uint32_t* dt = &L.d_train[(i * n + m) * W];
          std::uint32_t any = 0u;
          for (int w = 0; w < W; ++w) any |= dt[w];
          if (any == 0u) continue;
          if (s.bl == 1 && a.directions == analog::PulseDirections::Both) {
            // BL 1: the row's one slot meets every active column's.
            if (na > 0) r.add_unit(&L.x_col[m * in], &L.x_positive[m * in], na, a.d[m * out + i] > 0.f);
            continue;
          }
          begin = r.reserve(na);
          std::int32_t* counts = &r.count[begin];
          const std::uint32_t* t = &L.x_train[m * in * W];
          if (W == 1) {
            const std::uint32_t d0 = dt[0];
            for (std::size_t k = 0; k < na; ++k) counts[k] = analog::popcount32(d0 & t[k]);
          } else {
            for (std::size_t k = 0; k < na; ++k) {
              int c = 0;
              for (int w = 0; w < W; ++w) c += analog::popcount32(dt[w] & t[k * W + w]);
              counts[k] = c;
            }
          }
        } else {
          const float d_value = L.d_value[i * n + m];
          if (d_value == 0.f) continue;
          begin = r.reserve(na);
          std::int32_t* counts = &r.count[begin];
          const float* xv = &L.x_value[m * in];
          for (std::size_t k = 0; k < na; ++k)
            counts[k] = mean_count ? int(std::round(d_value / float(s.bl) * xv[k]))
                                   : int(std::round(float(s.bl) * d_value * xv[k]));
        }
        r.add(&L.x_col[m * in], &L.x_positive[m * in], begin, na, a.d[m * out + i] > 0.f, a.directions);
      }
      const std::int64_t row_pulses = r.pulses;
      if (row_pulses == 0) continue;
      if (noisy) {
        r.z.resize(std::size_t(row_pulses));
        fill_normal(a.seed, a.noise_stream, row_noise_block(a, i), row_pulses, r.z.data());
      }
      with_law(a.law.law, [&]<analog::PulsedLaw Law>() {
        if (noisy) apply_row<Law, true>(a, i, r);
        else apply_row<Law, false>(a, i, r);
      });
      pulses += row_pulses;
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
