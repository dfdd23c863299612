// Weight <-> conductance maps of the conductance converters (REFERENCE.md
// section 5, layers/devices/conductance_converters.cpp) as plain functions of
// one weight, shared by the CPU converters and their CUDA twins. The per-tile
// scale s (µS per weight unit) and, for a single device, min W come from a
// reduction over the tile done by the caller. Units: µS.
//   pairs:  pair k carries what the pairs before it cannot:
//           g±_k = clamp((relu(±s·w) − lb_k)/f_k + g_min, g_min, g_max),
//           lb_k = Σ_{j<k} f_j·(g_max − g_min);  w = Σ f_k·(g⁺_k − g⁻_k)/s
//   single: g = (w − w_min)·s + g_min;  w = w_min + (g − g_min)/s
#pragma once

#include "kernels/random.h"  // AIMC_HD

namespace aimc {

struct PairLaw {
  static constexpr int kMaxPairs = 8;
  int pairs = 1;
  float f[kMaxPairs] = {1.f};
  double g_min = 0.0, g_max = 25.0;
};

AIMC_HD double pair_clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

// Device d (0 = g⁺ of pair 0, 1 = g⁻ of pair 0, 2 = g⁺ of pair 1, ...) of weight w.
AIMC_HD float pair_conductance(const PairLaw& l, double s, float w, int d) {
  const int k = d / 2;
  const double sw = s * w;
  const double v = (d % 2 == 0) ? (sw > 0.0 ? sw : 0.0) : (sw < 0.0 ? -sw : 0.0);
  double lb = 0.0;
  for (int j = 0; j < k; ++j) lb += l.f[j] * (l.g_max - l.g_min);
  return static_cast<float>(pair_clamp((v - lb) / l.f[k] + l.g_min, l.g_min, l.g_max));
}

// The weight of element i from planes g[d·n + i].
AIMC_HD float pair_weight(const PairLaw& l, double s, const float* g, long long n, long long i) {
  double sum = 0.0;
  for (int k = 0; k < l.pairs; ++k)
    sum += l.f[k] * (static_cast<double>(g[(2 * k) * n + i]) - g[(2 * k + 1) * n + i]);
  return static_cast<float>(sum / s);
}

AIMC_HD float single_conductance(double g_min, double s, double w_min, float w) {
  return static_cast<float>((static_cast<double>(w) - w_min) * s + g_min);
}

AIMC_HD float single_weight(double g_min, double s, double w_min, float g) {
  return static_cast<float>(w_min + (static_cast<double>(g) - g_min) / s);
}

// CustomPair tables: device d's conductance at `points` weights spaced
// evenly on [−m, m] (m = max|W| of the tile, > 0), linear in between,
// constant beyond the ends. Needs 2 <= points <= kMaxPoints (the factory checks).
struct PairTables {
  static constexpr int kMaxDevices = 2 * PairLaw::kMaxPairs, kMaxPoints = 32;
  int devices = 2, points = 2;
  float g[kMaxDevices][kMaxPoints] = {};
};

AIMC_HD float table_conductance(const PairTables& t, double m, float w, int d) {
  const double last = t.points - 1;
  const double x = pair_clamp((w + m) / (2.0 * m) * last, 0.0, last);
  int lo = static_cast<int>(x);
  lo = lo < t.points - 2 ? lo : t.points - 2;
  const double frac = x - lo;
  return static_cast<float>(t.g[d][lo] + frac * (static_cast<double>(t.g[d][lo + 1]) - t.g[d][lo]));
}

}  // namespace aimc
