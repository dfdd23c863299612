// max |v_k| of a float array, on the bits: |v| orders as an unsigned
// integer, and that loop vectorises where a float max does not. A NaN counts
// as 0, as in analog::max_value's reductions (a < b ? b : a skips it).
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>

namespace aimc::cpu {

inline float abs_max_skipping_nan(const float* v, std::int64_t size) {
  std::uint32_t m = 0u;
  for (std::int64_t k = 0; k < size; ++k) {
    const std::uint32_t b = std::bit_cast<std::uint32_t>(v[k]) & 0x7fffffffu;
    m = std::max(m, b & (0u - std::uint32_t(b <= 0x7f800000u)));  // a mask, not a branch: vectorises
  }
  return std::bit_cast<float>(m);
}

}  // namespace aimc::cpu
