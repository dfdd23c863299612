// Counter-based random numbers shared by CPU and CUDA code (Philox4x32-10,
// Random123). Every draw is a pure function of (seed, stream, counter):
//   key     = seed (64 bits)
//   counter = (block index low, block index high, stream low, stream high)
// Block b yields four 32-bit words, i.e. the draws 4b .. 4b+3 of a stream.
// The conversions to uniform and normal values below (and the fast float
// Box-Muller of kernels/random_normal.h used by the analog periphery) are
// built from IEEE-exact operations where CUDA must match, so the same (seed,
// stream, index) gives the same value on every device.
#pragma once

#include <Random123/philox.h>

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define AIMC_HD __host__ __device__ inline
#else
#define AIMC_HD inline
#endif

namespace aimc::rng {

struct Block {
  std::uint32_t v[4];
};

AIMC_HD Block philox(std::uint64_t seed, std::uint64_t stream, std::uint64_t block) {
  r123::Philox4x32_R<10> gen;
  r123::Philox4x32_R<10>::ctr_type c = {{static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
                                         static_cast<std::uint32_t>(stream),
                                         static_cast<std::uint32_t>(stream >> 32)}};
  r123::Philox4x32_R<10>::key_type k = {{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)}};
  auto r = gen(c, k);
  return Block{{r[0], r[1], r[2], r[3]}};
}

// Uniform in the open interval (0, 1) with 23 random bits: (x>>9 + 0.5) / 2^23.
// Every value is exact in float; the largest is 1 - 2^-24 < 1.
AIMC_HD float uniform_open(std::uint32_t x) {
  return (static_cast<float>(x >> 9) + 0.5f) * (1.0f / 8388608.0f);
}

// Uniform in (0, 1) with 53 random bits from two words (for float64 draws).
AIMC_HD double uniform_open_double(std::uint32_t hi, std::uint32_t lo) {
  const std::uint64_t bits = (static_cast<std::uint64_t>(hi) << 21) ^ (lo >> 11);
  return (static_cast<double>(bits & ((1ull << 53) - 1)) + 0.5) * (1.0 / 9007199254740992.0);
}

// Box-Muller on two uniforms: writes two standard normals. Computed in double
// so CPU and CUDA agree after rounding to float, except in rare cases where
// CUDA's double log/sin/cos (1–2 ulp) move a value across a float rounding.
AIMC_HD void box_muller(float u1, float u2, float& z0, float& z1) {
  const double r = ::sqrt(-2.0 * ::log(static_cast<double>(u1)));
  const double t = 6.283185307179586 * static_cast<double>(u2);
  z0 = static_cast<float>(r * ::cos(t));
  z1 = static_cast<float>(r * ::sin(t));
}

}  // namespace aimc::rng
