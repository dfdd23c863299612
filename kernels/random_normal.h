// Fast standard normals from Philox words, for the hot noise paths (analog
// MVM periphery). Box-Muller in float with a polynomial log and sin/cos that
// use only operations IEEE 754 defines exactly (+, −, ×, ÷, sqrt, fma, integer
// bit operations), written with explicit fma, so scalar CPU code, vectorised
// CPU loops and CUDA produce the same bits. It differs from rng::box_muller
// (double-precision libm, see random.h) by at most ~5e-7 absolute, and is
// about 10x cheaper because the loops vectorise.
//
//   box_muller_fast(w0, w1): r = sqrt(−2·log u(w0)), θ = 2π·u(w1),
//   z0 = r·cos θ, z1 = r·sin θ, with u = rng::uniform_open.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/random.h"

namespace aimc::rng {

AIMC_HD std::uint32_t float_bits(float x) {
  std::uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

AIMC_HD float bits_float(std::uint32_t b) {
  float x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// Natural log for normal positive floats (used on (0, 1]): x = 2^e·m with m in
// [√½, √2), log m = 2·atanh(s), s = (m−1)/(m+1), series to s^9 (|s| < 0.172).
AIMC_HD float log_positive(float x) {
  const std::uint32_t b = float_bits(x);
  float e = static_cast<float>(static_cast<int>(b >> 23) - 127);
  float m = bits_float((b & 0x7fffffu) | 0x3f800000u);
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1.f : e;
  const float f = m - 1.f;
  const float s = f / (2.f + f);
  const float s2 = s * s;
  float p = std::fma(s2, 0.111111111f, 0.142857143f);
  p = std::fma(s2, p, 0.2f);
  p = std::fma(s2, p, 0.333333333f);
  p = std::fma(s2, p, 1.f);
  // ln 2 split into a high part exact in float and the remainder.
  return std::fma(e, 0.693145752f, std::fma(e, 1.42860677e-06f, 2.f * s * p));
}

// sin and cos of 2π·t for t in [0, 1): quadrant from 4t, then Taylor series
// on [0, π/2) to x^11 (sin) and x^12 (cos).
AIMC_HD void sincos_turn(float t, float& sin_out, float& cos_out) {
  const float q = t * 4.f;
  const int k = static_cast<int>(q);
  const float x = (q - static_cast<float>(k)) * 1.57079637f;
  const float x2 = x * x;
  float sp = std::fma(x2, -2.50521084e-8f, 2.75573192e-6f);
  sp = std::fma(x2, sp, -1.98412698e-4f);
  sp = std::fma(x2, sp, 8.33333333e-3f);
  sp = std::fma(x2, sp, -0.166666667f);
  sp = std::fma(x2, sp, 1.f);
  const float s = x * sp;
  float c = std::fma(x2, 2.08767570e-9f, -2.75573192e-7f);
  c = std::fma(x2, c, 2.48015873e-5f);
  c = std::fma(x2, c, -1.38888889e-3f);
  c = std::fma(x2, c, 4.16666667e-2f);
  c = std::fma(x2, c, -0.5f);
  c = std::fma(x2, c, 1.f);
  sin_out = k == 0 ? s : k == 1 ? c : k == 2 ? -s : -c;
  cos_out = k == 0 ? c : k == 1 ? -s : k == 2 ? -c : s;
}

// The radius² −2·log u(w) of the Box-Muller transform.
AIMC_HD float box_muller_radius2(std::uint32_t w) { return -2.f * log_positive(uniform_open(w)); }

// Two standard normals from two Philox words (see the top of the file).
AIMC_HD void box_muller_fast(std::uint32_t w0, std::uint32_t w1, float& z0, float& z1) {
  const float r = std::sqrt(box_muller_radius2(w0));
  float s, c;
  sincos_turn(uniform_open(w1), s, c);
  z0 = r * c;
  z1 = r * s;
}

}  // namespace aimc::rng

namespace aimc::rng {

// Normal number j of a stream starting at `block` (the layout of
// cpu::fill_normal: block + j/4, word pair (j%4)/2, cos for even j, sin for odd).
AIMC_HD float normal_at(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::uint64_t j) {
  const Block b = philox(seed, stream, block + j / 4);
  const int pair = static_cast<int>((j % 4) / 2);
  float z0, z1;
  box_muller_fast(b.v[2 * pair], b.v[2 * pair + 1], z0, z1);
  return (j % 2) ? z1 : z0;
}

}  // namespace aimc::rng
