// The PCM-family device laws (REFERENCE.md section 5) as plain functions of
// one conductance, shared by the CPU noise models (layers/devices/) and their
// CUDA twins (kernels/cuda/device_noise.cu), so both compute the same values. The
// arithmetic is double; results are stored as float. Units: µS, seconds.
//   program:  σ = Σ_k prog_coeff[k]·g_r^k·prog_unit, g_prog = max(0, g_T + prog_noise_scale·σ·ξ)
//   exponent: ν = |μ(ln g_r) + σ_ν(ln g_r)·ξ|·drift_scale, g_r = max(g_T/g_max, 1e-7),
//             μ, σ_ν = clamp(a0 + a1·ln g_r, lo, hi)
//   read:     g_d = g_prog·(t/t_0)^(−ν) when t > t_0,
//             g = max(0, g_d + |g_d|·Q(|g_prog|/g_max)·time_factor·ξ),
//             Q(g_r) = min(coeff / max(g_r^power, floor), max)
// where time_factor = read_noise_scale·sqrt(ln((t + t_read)/(2 t_read))), t = t_inf + t_0.
#pragma once

#include <cmath>

#include "kernels/random.h"  // AIMC_HD

namespace aimc {

struct PcmLaw {
  static constexpr int kMaxCoeff = 8;
  float prog_coeff[kMaxCoeff] = {};
  int prog_terms = 0;
  double prog_unit = 1.0;  // g_max / prog_coeff_g_max_reference
  double g_max = 25.0;     // µS
  double prog_noise_scale = 1.0, drift_scale = 1.0;
  double nu_mean[4] = {0.0244, -0.0155, 0.049, 0.1};  // a0, a1, lo, hi
  double nu_std[4] = {-0.0059, -0.0125, 0.008, 0.045};
  double q_coeff = 0.0088, q_power = 0.65, q_floor = 1e-3, q_max = 0.2;
};

// One drift time: the factors every conductance shares.
struct PcmDriftTime {
  double log_ratio = 0.0;    // ln(t / t_0)
  bool drifting = false;     // t > t_0
  double time_factor = 0.0;  // read_noise_scale · sqrt-log factor
};

AIMC_HD double pcm_clamp(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

AIMC_HD float pcm_program(const PcmLaw& l, float g_target, float xi) {
  const double g_r = g_target / l.g_max;
  double sigma = 0.0, power = 1.0;
  for (int k = 0; k < l.prog_terms; ++k) {
    sigma += l.prog_coeff[k] * power;
    power *= g_r;
  }
  const double g = g_target + l.prog_noise_scale * sigma * l.prog_unit * xi;
  return static_cast<float>(g > 0.0 ? g : 0.0);
}

AIMC_HD float pcm_exponent_from(double mean, double std, double drift_scale, float xi) {
  return static_cast<float>(::fabs(mean + std * xi) * drift_scale);
}

AIMC_HD float pcm_drift_exponent(const PcmLaw& l, float g_target, float xi) {
  const double g_r = g_target / l.g_max;
  const double log_g = ::log(g_r > 1e-7 ? g_r : 1e-7);
  const double mean = pcm_clamp(l.nu_mean[0] + l.nu_mean[1] * log_g, l.nu_mean[2], l.nu_mean[3]);
  const double std = pcm_clamp(l.nu_std[0] + l.nu_std[1] * log_g, l.nu_std[2], l.nu_std[3]);
  return pcm_exponent_from(mean, std, l.drift_scale, xi);
}

AIMC_HD float pcm_read(const PcmLaw& l, const PcmDriftTime& t, float g_prog, float nu, float xi) {
  const double gp = g_prog;
  const double gd = t.drifting ? gp * ::exp(-static_cast<double>(nu) * t.log_ratio) : gp;
  double out = gd;
  if (t.time_factor > 0.0) {
    const double p = ::pow(::fabs(gp) / l.g_max, l.q_power);
    const double q = l.q_coeff / (p > l.q_floor ? p : l.q_floor);
    out = gd + ::fabs(gd) * (q < l.q_max ? q : l.q_max) * t.time_factor * xi;
  }
  return static_cast<float>(out > 0.0 ? out : 0.0);
}

// CustomDriftPCMLikeNoiseModel's drift-exponent tables: μ(g_T), σ(g_T) by
// linear interpolation over ascending conductances g (µS), constant beyond
// the ends (numpy.interp). Needs 2 <= points <= kMaxPoints (the factory checks).
struct DriftTable {
  static constexpr int kMaxPoints = 32;
  int points = 0;
  float g[kMaxPoints] = {}, mean[kMaxPoints] = {}, std[kMaxPoints] = {};
};

AIMC_HD float table_drift_exponent(const DriftTable& t, double drift_scale, float g_target, float xi) {
  const double g = pcm_clamp(g_target, t.g[0], t.g[t.points - 1]);
  int hi = 1;
  while (hi < t.points - 1 && t.g[hi] <= g) ++hi;
  const int lo = hi - 1;
  const double w = (g - t.g[lo]) / (static_cast<double>(t.g[hi]) - t.g[lo]);
  const double mean = t.mean[lo] + w * (static_cast<double>(t.mean[hi]) - t.mean[lo]);
  const double std = t.std[lo] + w * (static_cast<double>(t.std[hi]) - t.std[lo]);
  return pcm_exponent_from(mean, std, drift_scale, xi);
}

}  // namespace aimc
