// The pulsed update of an analog tile (REFERENCE.md section 6), the parts
// shared by the CPU and CUDA kernels: the pulse schedule of one sample (bit
// length BL and the probability scales A, B), the stochastic pulse trains as
// bit masks, and the step laws of the pulsed devices.
//
// Target: W ← W − lr·d·xᵀ. Each of BL slots fires row i with probability
// A·|d_i| and column j with probability B·|x_j|; each coincidence moves w_ij
// one device step down when d_i·x_j > 0 and up otherwise, so the expected
// change is −lr·d_i·x_j in units of the device's mean step dw_min.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/random.h"
#include "kernels/random_normal.h"

namespace aimc::analog {

// aihwkit's PulseType.
enum class PulseType : int { None, StochasticCompressed, Stochastic, DeterministicImplicit, MeanCount };

// The UpdateParameters the kernels read (layers/config/update_parameters.h).
struct UpdatePulseParams {
  PulseType pulse_type = PulseType::StochasticCompressed;
  int desired_bl = 31;
  bool fixed_bl = true;
  bool update_bl_management = true;
  bool update_management = true;
  float um_grad_scale = 1.f;
  float res = 0.f;             // probability resolution (0: continuous)
  float x_res_implicit = 0.f;  // DETERMINISTIC_IMPLICIT resolutions of x and d
  float d_res_implicit = 0.f;
};

// Which coincidences a device takes. A OneSidedUnitCell's devices only move
// up: its plus device takes the up pulses (UpOnly), its minus device takes
// the down pulses as up pulses (DownAsUp).
enum class PulseDirections : int { Both, UpOnly, DownAsUp };

// A train has at most kMaxPulseWords 32-bit words (BL <= 128).
constexpr int kMaxPulseWords = 4;

// The pulse schedule of one sample: BL slots, row probability A·|d_i|,
// column probability B·|x_j|. bl = 0: no pulses.
struct PulseSchedule {
  int bl = 0;
  float a = 0.f, b = 0.f;
};

// aihwkit's calculateBlAB / performUpdateManagement: BL = desired_bl and
// A = B = sqrt(lr/(dw_min·BL)); with update_bl_management BL = ceil(k) capped
// at desired_bl, k = lr·max|x|·um_grad_scale·max|d|/dw_min; with
// update_management A and B rescaled so that the largest x and d
// probabilities are equal (beyond desired_bl the d probabilities clip, x not).
AIMC_HD PulseSchedule pulse_schedule(const UpdatePulseParams& up, float x_abs_max, float d_abs_max, float lr,
                                     float dw_min) {
  PulseSchedule s;
  if (!(lr > 0.f) || up.pulse_type == PulseType::None) return s;
  const int max_bl = up.desired_bl;
  if (up.fixed_bl || up.update_bl_management) {
    s.bl = max_bl;
    s.a = s.b = ::sqrtf(lr / (dw_min * float(s.bl)));
  } else if (dw_min * float(max_bl) < lr) {
    s.a = s.b = 1.f;
    s.bl = int(::ceilf(lr / dw_min));
    if (s.bl < 1) s.bl = 1;
  } else {
    s.bl = max_bl;
    s.a = s.b = ::sqrtf(lr / (dw_min * float(s.bl)));
  }
  // aihwkit does not cap this BL; trains here hold at most 128 slots, so a
  // learning rate above 128·dw_min (fixed_bl and update_bl_management both
  // off) moves a weight by at most 128 steps per sample.
  if (s.bl > 32 * kMaxPulseWords) s.bl = 32 * kMaxPulseWords;
  if (!(up.update_bl_management || up.update_management)) return s;
  if (d_abs_max == 0.f || x_abs_max == 0.f) return PulseSchedule{};
  const float x_val = x_abs_max;
  float d_val = up.um_grad_scale * d_abs_max;
  const float k = lr * x_val * d_val / dw_min;
  if (up.update_bl_management) {
    s.bl = int(::ceilf(k));
    if (s.bl > max_bl) s.bl = max_bl;
    if (s.bl < 1) s.bl = 1;
    s.a = s.b = ::sqrtf(lr / (dw_min * float(s.bl)));
  }
  if (up.update_management) {
    if (k > float(max_bl)) d_val *= float(max_bl) / k;
    s.a *= ::sqrtf(x_val / d_val);
    s.b *= ::sqrtf(d_val / x_val);
  }
  return s;
}

// A probability p on the grid of resolution res (> 0; 0: unchanged),
// rounded to nearest (aihwkit's getDiscretizedValue without sto_round).
AIMC_HD float discretize(float p, float res) {
  return res > 0.f ? res * ::roundf(p / res) : p;
}

// A train of BL slots is pulse_words(BL) 32-bit words (slot s: bit s % 32
// of word s / 32); BL is at most 32·kMaxPulseWords = 128.
AIMC_HD int pulse_words(int bl) { return (bl + 31) / 32; }
// The most words a sample's train can need under these parameters (BL is
// at most desired_bl unless both fixed_bl and update_bl_management are off).
AIMC_HD int max_pulse_words(const UpdatePulseParams& up) {
  return up.fixed_bl || up.update_bl_management ? pulse_words(up.desired_bl) : kMaxPulseWords;
}
// The pulse trains of one sample come from the UpdatePulses stream from
// `sample_block`, which reserves kPulseBlocksPerLine blocks per line (eight
// per word).
constexpr std::uint64_t kPulseBlocksPerWord = 8;
constexpr std::uint64_t kPulseBlocksPerLine = kPulseBlocksPerWord * kMaxPulseWords;
// Bits of the fixed-point probability (p is compared with a 24-bit uniform).
constexpr int kPulseProbabilityBits = 24;
// Trains of up to this many slots share the sample's words (pulse_train_few).
constexpr int kFewSlots = 4;

// The slots (bits 0 .. bl-1) in which a line with firing probability p
// fires, each independently with probability p rounded down to a multiple
// of 2^-24: slot s fires when its 24-bit uniform U_s < P = p·2^24.
// pulse_slots: the mask of a word's slots (bl: the slots in that word, <= 32).
AIMC_HD std::uint32_t pulse_slots(int bl) { return bl >= 32 ? 0xffffffffu : ((1u << bl) - 1u); }
// The slots of word w of a bl-slot train.
AIMC_HD int pulse_word_slots(int bl, int w) { return bl - 32 * w < 32 ? bl - 32 * w : 32; }
// The 24-bit threshold P of probability p, clipped to [0, 1] (NaN: 0), so
// that P = 2^24 fires every slot and P = 0 none.
AIMC_HD std::uint32_t pulse_threshold(float p) {
  p = p > 0.f ? (p < 1.f ? p : 1.f) : 0.f;
  return std::uint32_t(p * float(1u << kPulseProbabilityBits));
}

// Few slots (bl <= kFewSlots): the lines of a sample share its words, slot s
// of line l reading word w = l·bl + s (word w % 4 of block sample_block +
// w / 4); U_s is its top 24 bits. `words` are the line's bl words.
AIMC_HD std::uint32_t pulse_train_few(float p, int bl, const std::uint32_t* words) {
  if (!(p > 0.f) || bl <= 0) return 0u;
  if (p >= 1.f) return pulse_slots(bl);
  const std::uint32_t P = pulse_threshold(p);
  std::uint32_t fired = 0u;
  for (int s = 0; s < bl; ++s) fired |= std::uint32_t((words[s] >> 8) < P) << s;
  return fired;
}

// One slot (bl = 1): pulse_train_few(p, 1, &word), without branches.
AIMC_HD std::uint32_t pulse_train_one(float p, std::uint32_t word) {
  return std::uint32_t((word >> 8) < pulse_threshold(p));
}

// Many slots: word w of line l reads its own blocks from sample_block +
// l·kPulseBlocksPerLine + w·8, and the word's bl (<= 32) slots are decided
// together: bit s of Philox word t is bit t (most significant first) of slot
// s's U_s. Reading stops once every slot is decided (about seven words for
// 31 slots). `first` is the word's first block; later ones are drawn here.
AIMC_HD std::uint32_t pulse_train_many(float p, int bl, const rng::Block& first, std::uint64_t seed,
                                       std::uint64_t stream, std::uint64_t word_block) {
  if (!(p > 0.f) || bl <= 0) return 0u;
  if (p >= 1.f) return pulse_slots(bl);
  const std::uint32_t P = pulse_threshold(p);
  std::uint32_t less = 0u, equal = pulse_slots(bl);
  rng::Block b = first;
  for (int t = 0; t < kPulseProbabilityBits && equal != 0u; ++t) {
    if (t > 0 && t % 4 == 0) b = rng::philox(seed, stream, word_block + std::uint64_t(t / 4));
    const std::uint32_t r = b.v[t % 4];
    if ((P >> (kPulseProbabilityBits - 1 - t)) & 1u) {
      less |= equal & ~r;  // U's bit 0 where P's is 1: U < P decided
      equal &= r;
    } else {
      equal &= ~r;  // U's bit 1 where P's is 0: U > P decided
    }
  }
  return less;
}

// The block word w of line l starts from (many slots).
AIMC_HD std::uint64_t pulse_word_block(std::uint64_t sample_block, std::uint64_t line, int w) {
  return sample_block + line * kPulseBlocksPerLine + std::uint64_t(w) * kPulseBlocksPerWord;
}

// Word w of the train of line l of a sample, drawing what it needs (one
// thread per line on CUDA; the CPU draws the words of a sample in bulk).
AIMC_HD std::uint32_t pulse_train(float p, int bl, std::uint64_t seed, std::uint64_t stream,
                                  std::uint64_t sample_block, std::uint64_t line, int w = 0) {
  if (bl <= 0 || w >= pulse_words(bl)) return 0u;
  const int slots = pulse_word_slots(bl, w);
  if (!(p > 0.f) || p >= 1.f) return pulse_train_few(p, slots, nullptr);
  if (bl <= kFewSlots) {
    std::uint32_t words[kFewSlots];
    const std::uint64_t w0 = line * std::uint64_t(bl);
    rng::Block b = rng::philox(seed, stream, sample_block + w0 / 4);
    for (int s = 0; s < bl; ++s) {
      const std::uint64_t k = w0 + std::uint64_t(s);
      if (s > 0 && k % 4 == 0) b = rng::philox(seed, stream, sample_block + k / 4);
      words[s] = b.v[k % 4];
    }
    return pulse_train_few(p, bl, words);
  }
  const std::uint64_t word_block = pulse_word_block(sample_block, line, w);
  return pulse_train_many(p, slots, rng::philox(seed, stream, word_block), seed, stream, word_block);
}

// Number of set bits.
AIMC_HD int popcount32(std::uint32_t v) {
#if defined(__CUDA_ARCH__)
  return __popc(v);
#else
  return __builtin_popcount(v);
#endif
}

// ---------------------------------------------------------------------------
// Step laws. A device element holds its bounds, its mean up and down steps
// (dwmin_up, dwmin_down, both > 0) and two law-specific values.

// SoftBounds shares LinearStep's law (its slopes are -dwmin/bound);
// SoftBoundsReference was added last to keep the earlier values.
enum class PulsedLaw : int {
  ConstantStep,
  LinearStep,
  SoftBounds,
  ExpStep,
  PowStep,
  PiecewiseStep,
  Ideal,
  SoftBoundsReference
};

constexpr int kMaxPiecewiseNodes = 32;

// Device-wide values of a law (layers/devices/pulsed/*.cpp fill them).
struct PulsedLawParams {
  PulsedLaw law = PulsedLaw::ConstantStep;
  float dw_min_std = 0.f;  // cycle-to-cycle spread of a step (relative, or absolute for additive noise)
  bool mult_noise = true;  // LinearStep/SoftBounds/SoftBoundsReference: the noise scales the whole step
  // ExpStep
  float A_up = 0.f, A_down = 0.f, gamma_up = 0.f, gamma_down = 0.f, a = 0.f, b = 0.f;
  float dw_min_std_add = 0.f, dw_min_std_slope = 0.f;  // ExpStep's additive noise terms (weight units)
  // PiecewiseStep: step factors at nodes evenly spaced over [min_bound, max_bound]
  int n_nodes = 0;
  float piecewise_up[kMaxPiecewiseNodes] = {};
  float piecewise_down[kMaxPiecewiseNodes] = {};
};

// One element's device-to-device values.
struct PulsedElement {
  float max_bound, min_bound;  // weight bounds
  float up, down;              // mean step sizes up / down (> 0)
  // law-specific: LinearStep/SoftBounds slope_up/slope_down, PowStep
  // gamma_up/gamma_down, SoftBoundsReference the reference (p0)
  float p0, p1;
};

// e^x from IEEE-exact operations only (+, ×, fma, roundf, exponent bits), so
// the CPU and CUDA laws give the same bits (libm's expf and CUDA's differ in
// the last place): x = k·ln2 + r with |r| <= ln2/2, e^r by its Taylor series
// to r^7 (relative error < 1e-7), times 2^k. x is clamped to [−87, 88].
AIMC_HD float exp_portable(float x) {
  x = x < -87.f ? -87.f : (x > 88.f ? 88.f : x);
  const float k = ::roundf(x * 1.44269504f);
  // ln 2 split as in rng::log_positive: k·0.693145752 is exact for |k| <= 127.
  float r = std::fma(k, -0.693145752f, x);
  r = std::fma(k, -1.42860677e-06f, r);
  float q = std::fma(r, 1.98412698e-04f, 1.38888889e-03f);
  q = std::fma(r, q, 8.33333333e-03f);
  q = std::fma(r, q, 4.16666667e-02f);
  q = std::fma(r, q, 1.66666667e-01f);
  q = std::fma(r, q, 0.5f);
  q = std::fma(r, q, 1.f);
  q = std::fma(r, q, 1.f);
  return q * rng::bits_float(std::uint32_t(int(k) + 127) << 23);
}

// a^g for a >= 0 as exp(g·log a) with the portable exp and log (0^g = 0 for
// g > 0, 1 for g = 0; a below the smallest normal float counts as 0).
AIMC_HD float pow_portable(float a, float g) {
  if (!(a >= 1.17549435e-38f)) return g == 0.f ? 1.f : 0.f;
  return exp_portable(g * rng::log_positive(a));
}

// w clipped to the element's bounds.
AIMC_HD float clip_to_bounds(const PulsedElement& e, float w) {
  w = w > e.max_bound ? e.max_bound : w;
  return w < e.min_bound ? e.min_bound : w;
}

// One pulse on w under law L: down (d·x > 0) or up, with the standard
// normal xi of its cycle-to-cycle noise; the result is clipped to the
// element's bounds. SoftBoundsReference moves the conductance g = w +
// reference and clips g. The law is a template parameter so that the CPU
// kernel's per-pulse loop compiles to one straight (vectorisable) law;
// pulsed_step below picks it at run time.
template <PulsedLaw L>
AIMC_HD float pulsed_step_as(const PulsedLawParams& p, const PulsedElement& e, float w, bool down, float xi) {
  const float noise = p.dw_min_std * xi;
  const float step = down ? e.down : e.up;
  float dw = 0.f;  // magnitude of the move (its sign below)
  if constexpr (L == PulsedLaw::ConstantStep || L == PulsedLaw::Ideal) {
    dw = step * (1.f + noise);
  } else if constexpr (L == PulsedLaw::LinearStep || L == PulsedLaw::SoftBounds) {
    // The step changes linearly with w: slope·w + dwmin.
    const float linear = (down ? e.p1 : e.p0) * w;
    dw = p.mult_noise ? (linear + step) * (1.f + noise) : linear + step * (1.f + noise);
  } else if constexpr (L == PulsedLaw::SoftBoundsReference) {
    // The step shrinks to 0 at the bound the conductance moves towards.
    float g = w + e.p0;
    const float bound = down ? e.min_bound : e.max_bound;
    const float rel = (down ? bound < 0.f : bound > 0.f) ? g / bound : 0.f;
    const float dg = p.mult_noise ? step * (1.f - rel) * (1.f + noise) : step * (1.f - rel + noise);
    g = down ? g - dg : g + dg;
    return clip_to_bounds(e, g) - e.p0;
  } else if constexpr (L == PulsedLaw::ExpStep) {
    const float range = e.max_bound - e.min_bound;
    if (!(range > 0.f)) return w;  // a device without range does not move
    const float z = 2.f * p.a * w / range + p.b;
    float y = down ? 1.f - p.A_down * exp_portable(-p.gamma_down * z) : 1.f - p.A_up * exp_portable(p.gamma_up * z);
    y = y > 0.f ? y : 0.f;
    const float mean = y * step;
    if (p.dw_min_std_add != 0.f || p.dw_min_std_slope != 0.f) {
      // Noise of the signed change, with a floor and a part growing with |w|.
      const float spread = mean + p.dw_min_std_add + p.dw_min_std_slope * ::fabsf(w);
      dw = mean + (down ? -noise : noise) * spread;
    } else {
      dw = mean * (1.f + noise);
    }
  } else if constexpr (L == PulsedLaw::PowStep) {
    const float range = e.max_bound - e.min_bound;
    if (range == 0.f) return w;
    const float frac = down ? (w - e.min_bound) / range : (e.max_bound - w) / range;
    dw = step * pow_portable(frac, down ? e.p1 : e.p0) * (1.f + noise);
  } else if constexpr (L == PulsedLaw::PiecewiseStep) {
    const float* f = down ? p.piecewise_down : p.piecewise_up;
    const int sections = p.n_nodes - 1;
    float factor = f[0];
    if (sections > 0 && e.max_bound > e.min_bound) {
      // Linear interpolation between the nodes around w.
      float ws = (w - e.min_bound) / (e.max_bound - e.min_bound) * float(sections);
      ws = ws > 0.f ? ws : 0.f;
      int k = int(::floorf(ws));
      k = k < sections - 1 ? k : sections - 1;
      float t = ws - float(k);
      t = t < 1.f ? t : 1.f;
      factor = (1.f - t) * f[k] + t * f[k + 1];
    }
    dw = step * factor * (1.f + noise);
  }
  return clip_to_bounds(e, down ? w - dw : w + dw);
}

// Whether law L reads the element's law-specific values p0 / p1.
template <PulsedLaw L>
constexpr bool law_reads_p0 = L == PulsedLaw::LinearStep || L == PulsedLaw::SoftBounds ||
                              L == PulsedLaw::SoftBoundsReference || L == PulsedLaw::PowStep;
template <PulsedLaw L>
constexpr bool law_reads_p1 = L == PulsedLaw::LinearStep || L == PulsedLaw::SoftBounds || L == PulsedLaw::PowStep;

// One pulse on w under the law p.law (pulsed_step_as).
AIMC_HD float pulsed_step(const PulsedLawParams& p, const PulsedElement& e, float w, bool down, float xi) {
  switch (p.law) {
    case PulsedLaw::LinearStep: return pulsed_step_as<PulsedLaw::LinearStep>(p, e, w, down, xi);
    case PulsedLaw::SoftBounds: return pulsed_step_as<PulsedLaw::SoftBounds>(p, e, w, down, xi);
    case PulsedLaw::ExpStep: return pulsed_step_as<PulsedLaw::ExpStep>(p, e, w, down, xi);
    case PulsedLaw::PowStep: return pulsed_step_as<PulsedLaw::PowStep>(p, e, w, down, xi);
    case PulsedLaw::PiecewiseStep: return pulsed_step_as<PulsedLaw::PiecewiseStep>(p, e, w, down, xi);
    case PulsedLaw::Ideal: return pulsed_step_as<PulsedLaw::Ideal>(p, e, w, down, xi);
    case PulsedLaw::SoftBoundsReference: return pulsed_step_as<PulsedLaw::SoftBoundsReference>(p, e, w, down, xi);
    case PulsedLaw::ConstantStep:
    default: return pulsed_step_as<PulsedLaw::ConstantStep>(p, e, w, down, xi);
  }
}

}  // namespace aimc::analog
