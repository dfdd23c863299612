// The ReRAM-CMO device laws (REFERENCE.md section 5, aihwkit's
// inference/noise/reram.py) as plain functions of one conductance, shared by
// ReRamCMONoiseModel and its CUDA twin. Units: µS, seconds; double inside.
//   program: g_prog = g_T + prog_noise_scale·(c0 + c1·g_T)·ξ
//   drift:   at t > 0, g_d = g_prog + shift + spread·ξ₁ with shift = m0·ln t·drift_scale and
//            spread = (s0·ln t + s1)·drift_scale; g = clamp(g_d + read·log10(max(g_d, 1e-7))·ξ₂,
//            g_min, g_max) with read = K·sqrt-log factor·read_noise_scale; at t = 0, g = g_prog.
#pragma once

#include <cmath>

#include "kernels/random.h"  // AIMC_HD

namespace aimc {

struct ReRamCmoLaw {
  double c0 = 0.0112185391, c1 = 0.01129027418;  // programming σ = c0 + c1·g_T (µS)
  double prog_noise_scale = 1.0;
  double g_min = 9.0, g_max = 88.199997;
};

// The factors of one drift time.
struct ReRamCmoDriftTime {
  bool drifting = false;  // t > 0
  double shift = 0.0, spread = 0.0, read = 0.0;
};

AIMC_HD float reram_program(const ReRamCmoLaw& l, float g_target, float xi) {
  return static_cast<float>(g_target + l.prog_noise_scale * (l.c0 + l.c1 * static_cast<double>(g_target)) * xi);
}

AIMC_HD float reram_read(const ReRamCmoLaw& l, const ReRamCmoDriftTime& t, float g_prog, float xi_drift,
                         float xi_read) {
  if (!t.drifting) return g_prog;
  const double gd = g_prog + t.shift + t.spread * xi_drift;
  const double g = gd + t.read * ::log10(gd > 1e-7 ? gd : 1e-7) * xi_read;
  return static_cast<float>(g < l.g_min ? l.g_min : (g > l.g_max ? l.g_max : g));
}

}  // namespace aimc
