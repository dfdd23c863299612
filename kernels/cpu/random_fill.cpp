// Bulk draws from one Philox stream (see random_fill.h).
#include "kernels/cpu/random_fill.h"

#include <algorithm>
#include <cmath>

#include "kernels/random.h"
#include "kernels/random_normal.h"

namespace aimc::cpu {

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
    for (std::int64_t b = 0; b < blocks; ++b) {
      const rng::Block k = rng::philox(seed, stream, block + static_cast<std::uint64_t>(t0 / 4 + b));
      for (int j = 0; j < 4; ++j) words[4 * b + j] = k.v[j];
    }
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
    for (std::int64_t r = 0; r < g; ++r)
      for (std::int64_t b = 0; b < blocks; ++b) {
        const rng::Block k = rng::philox(seed, stream, firsts[r0 + r] + static_cast<std::uint64_t>(b));
        for (int j = 0; j < 4; ++j) words[r * row_words + 4 * b + j] = k.v[j];
      }
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
  for (std::int64_t k = 0; k < n; ++k) {
    const rng::Block b = rng::philox(seed, stream, blocks[k]);
    for (int j = 0; j < 4; ++j) out[4 * k + j] = b.v[j];
  }
}

}  // namespace aimc::cpu
