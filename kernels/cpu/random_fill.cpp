// Bulk draws from one Philox stream (see random_fill.h).
#include "kernels/cpu/random_fill.h"

#include <algorithm>
#include <cmath>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/random.h"
#include "kernels/random_normal.h"

namespace aimc::cpu {

namespace {

// Philox4x32-10 of `count` blocks, block k being block_of(k), words to
// out[4k .. 4k+3]: Random123's rounds written lane by lane over 64 blocks so
// that the compiler vectorises them (about 3.7 ns a block here, against 5 for
// Random123's scalar call in a loop, which 16 lanes do not beat). Equal to
// rng::philox bit for bit (tests/test_random.cpp).
template <typename BlockOf>
void philox_lanes(std::uint64_t seed, std::uint64_t stream, std::int64_t count, BlockOf&& block_of,
                  std::uint32_t* out) {
  constexpr std::int64_t kLanes = 64;
  // Random123's Philox4x32 multipliers and Weyl key increments.
  constexpr std::uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (std::int64_t b0 = 0; b0 < count; b0 += kLanes) {
    const std::int64_t lanes = std::min(kLanes, count - b0);
    if (lanes < 16) {  // a short tail: one scalar call a block is cheaper than 64 lanes
      for (std::int64_t l = 0; l < lanes; ++l) {
        const rng::Block r = rng::philox(seed, stream, block_of(b0 + l));
        for (int j = 0; j < 4; ++j) out[4 * (b0 + l) + j] = r.v[j];
      }
      return;
    }
    const std::int64_t width = (lanes + 15) / 16 * 16;  // whole vectors
    alignas(64) std::uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
    for (std::int64_t l = 0; l < width; ++l) {
      const std::uint64_t b = block_of(b0 + std::min(l, lanes - 1));
      c0[l] = static_cast<std::uint32_t>(b);
      c1[l] = static_cast<std::uint32_t>(b >> 32);
      c2[l] = static_cast<std::uint32_t>(stream);
      c3[l] = static_cast<std::uint32_t>(stream >> 32);
    }
    std::uint32_t k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
#if defined(__AVX512F__)
    // 16 lanes a vector, the ten rounds in registers. _mm512_mul_epu32 gives
    // the 64-bit products of the even lanes; the odd lanes' come from the
    // same multiply after a shift, and the blends put each half in place.
    const __m512i m0 = _mm512_set1_epi64(std::int64_t(kM0)), m1 = _mm512_set1_epi64(std::int64_t(kM1));
    constexpr __mmask16 kOdd = 0xAAAA;
    auto mulhilo = [&](__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
      const __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
      lo = _mm512_mask_blend_epi32(kOdd, even, _mm512_slli_epi64(odd, 32));
      hi = _mm512_mask_blend_epi32(kOdd, _mm512_srli_epi64(even, 32), odd);
    };
    for (std::int64_t l = 0; l < width; l += 16) {
      __m512i x0 = _mm512_load_si512(c0 + l), x1 = _mm512_load_si512(c1 + l);
      __m512i x2 = _mm512_load_si512(c2 + l), x3 = _mm512_load_si512(c3 + l);
      std::uint32_t r0 = k0, r1 = k1;
      for (int round = 0; round < 10; ++round) {
        if (round > 0) r0 += kW0, r1 += kW1;
        __m512i hi0, lo0, hi1, lo1;
        mulhilo(x0, m0, hi0, lo0);
        mulhilo(x2, m1, hi1, lo1);
        x0 = _mm512_xor_si512(_mm512_xor_si512(hi1, x1), _mm512_set1_epi32(std::int32_t(r0)));
        x2 = _mm512_xor_si512(_mm512_xor_si512(hi0, x3), _mm512_set1_epi32(std::int32_t(r1)));
        x1 = lo1;
        x3 = lo0;
      }
      _mm512_store_si512(c0 + l, x0);
      _mm512_store_si512(c1 + l, x1);
      _mm512_store_si512(c2 + l, x2);
      _mm512_store_si512(c3 + l, x3);
    }
#else
    constexpr std::uint64_t kLow = 0xffffffffu;
    for (int round = 0; round < 10; ++round) {
      if (round > 0) k0 += kW0, k1 += kW1;
      for (std::int64_t l = 0; l < width; ++l) {
        const std::uint64_t p0 = kM0 * c0[l], p1 = kM1 * c2[l];
        const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1[l] ^ k0;
        const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3[l] ^ k1;
        c1[l] = static_cast<std::uint32_t>(p1 & kLow);
        c3[l] = static_cast<std::uint32_t>(p0 & kLow);
        c0[l] = n0;
        c2[l] = n2;
      }
    }
#endif
    for (std::int64_t l = 0; l < lanes; ++l) {
      std::uint32_t* o = out + 4 * (b0 + l);
      o[0] = c0[l], o[1] = c1[l], o[2] = c2[l], o[3] = c3[l];
    }
  }
}

}  // namespace

// Normals: count standard normals from consecutive blocks, four per Philox call
// (rng::box_muller_fast on words (0,1) and (2,3)). Tiles of 512 values: the
// Philox words first, then one vectorised loop for log/sin/cos and a short
// one for the square roots; the bits equal the scalar rng::box_muller_fast.
void fill_normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::int64_t count, float* z) {
  constexpr std::int64_t kTile = 512;
  std::uint32_t words[kTile];
  float radius2[kTile / 2], sine[kTile / 2], cosine[kTile / 2];
  for (std::int64_t t0 = 0; t0 < count; t0 += kTile) {
    const std::int64_t len = std::min(kTile, count - t0);
    const std::int64_t blocks = (len + 3) / 4;
    const std::uint64_t first = block + static_cast<std::uint64_t>(t0 / 4);
    philox_lanes(seed, stream, blocks, [first](std::int64_t b) { return first + static_cast<std::uint64_t>(b); },
                 words);
    const std::int64_t pairs = (len + 1) / 2;
    for (std::int64_t i = 0; i < pairs; ++i) {
      radius2[i] = rng::box_muller_radius2(words[2 * i]);
      rng::sincos_turn(rng::uniform_open(words[2 * i + 1]), sine[i], cosine[i]);
    }
    float* zt = z + t0;
    for (std::int64_t i = 0; i < len / 2; ++i) {
      const float radius = std::sqrt(radius2[i]);
      zt[2 * i] = radius * cosine[i];
      zt[2 * i + 1] = radius * sine[i];
    }
    if (len % 2) zt[len - 1] = std::sqrt(radius2[pairs - 1]) * cosine[pairs - 1];
  }
}

void fill_normal_rows(std::uint64_t seed, std::uint64_t stream, const std::uint64_t* firsts, std::int64_t rows,
                      std::int64_t count, float* z) {
  constexpr std::int64_t kTile = 512;  // words per group
  const std::int64_t blocks = (count + 3) / 4, row_words = 4 * blocks;
  if (count <= 0) return;
  if (row_words > kTile / 2) {  // long rows vectorise on their own
    for (std::int64_t r = 0; r < rows; ++r) fill_normal(seed, stream, firsts[r], count, z + r * count);
    return;
  }
  // Groups of rows whose words fit one tile: every row's words (all of its
  // blocks) in a row, Box-Muller over all pairs, then each row's first count.
  const std::int64_t group = kTile / row_words;
  std::uint32_t words[kTile];
  float radius2[kTile / 2], sine[kTile / 2], cosine[kTile / 2];
  for (std::int64_t r0 = 0; r0 < rows; r0 += group) {
    const std::int64_t g = std::min(group, rows - r0);
    std::uint64_t ids[kTile / 4];  // the group's blocks, row after row
    for (std::int64_t r = 0; r < g; ++r)
      for (std::int64_t b = 0; b < blocks; ++b) ids[r * blocks + b] = firsts[r0 + r] + static_cast<std::uint64_t>(b);
    philox_lanes(seed, stream, g * blocks, [&ids](std::int64_t k) { return ids[k]; }, words);
    const std::int64_t pairs = g * row_words / 2;
    for (std::int64_t i = 0; i < pairs; ++i) {
      radius2[i] = rng::box_muller_radius2(words[2 * i]);
      rng::sincos_turn(rng::uniform_open(words[2 * i + 1]), sine[i], cosine[i]);
    }
    for (std::int64_t r = 0; r < g; ++r) {
      const std::int64_t p0 = r * row_words / 2;
      float* zr = z + (r0 + r) * count;
      for (std::int64_t i = 0; i < count / 2; ++i) {
        const float radius = std::sqrt(radius2[p0 + i]);
        zr[2 * i] = radius * cosine[p0 + i];
        zr[2 * i + 1] = radius * sine[p0 + i];
      }
      if (count % 2) zr[count - 1] = std::sqrt(radius2[p0 + count / 2]) * cosine[p0 + count / 2];
    }
  }
}

void fill_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::int64_t count, float* u) {
  for (std::int64_t b = 0; 4 * b < count; ++b) {
    const rng::Block k = rng::philox(seed, stream, block + static_cast<std::uint64_t>(b));
    for (std::int64_t j = 0; j < 4 && 4 * b + j < count; ++j) u[4 * b + j] = rng::uniform_open(k.v[j]);
  }
}

void philox_blocks(std::uint64_t seed, std::uint64_t stream, const std::uint64_t* blocks, std::int64_t n,
                   std::uint32_t* out) {
  philox_lanes(seed, stream, n, [blocks](std::int64_t k) { return blocks[k]; }, out);
}

}  // namespace aimc::cpu
