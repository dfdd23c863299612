// The drift compensation's correction of one tile output (the tile
// programming model, layers/tiles/tile_programming.h): y_ij × α, with one α for every output (a global compensation,
// alpha_size 1) or α_j per output column. Shared by the CPU
// (layers/tiles/analog_tile.cpp) and CUDA (kernels/cuda/device_noise.cu), so
// both give the same bits (one float multiply).
#pragma once

#include <cstdint>

#include "kernels/random.h"  // AIMC_HD

namespace aimc {

AIMC_HD float drift_compensated(float y, const float* alpha, std::int64_t alpha_size, std::int64_t column) {
  return y * alpha[alpha_size == 1 ? 0 : column];
}

}  // namespace aimc
