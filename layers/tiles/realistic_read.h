// Reading weights back from a tile the way hardware would: drive the tile
// with random inputs through its (noisy) forward pass and estimate W by least
// squares (aihwkit's realistic read). Units: the tile's weight units.
#pragma once

#include <cstdint>

#include "engine/tensor.h"
#include "layers/tiles/analog_tile.h"

namespace aimc {

// Estimates the tile's [out, in] weights from samples_per_input * in random
// inputs x ~ U(-1, 1) (drawn from (seed, stream)) and the tile's eval-mode
// outputs y: W = argmin ||X Wᵀ - Y||². Uses the tile's forward noise streams,
// so it advances their counters like any other forward.
Tensor read_weights_realistic(AnalogTile& tile, std::uint64_t seed, std::uint64_t stream,
                              std::int64_t samples_per_input = 10);

class TileArray;
// The whole [out, in] tile matrix read tile by tile (read_weights_realistic,
// stream = tile id); the caller applies its digital scales.
Tensor read_tile_array_realistic(TileArray& tiles, std::uint64_t seed, std::int64_t samples_per_input = 10);

}  // namespace aimc
