// How a weight matrix [out, in] is cut into physical tiles (REFERENCE.md
// section 2): balanced splits of both dimensions by the mapping's maximum
// tile sizes.
#pragma once

#include <cstdint>
#include <vector>

namespace aimc {

// Balanced split of `size` into n = ceil(size / max_size) pieces; the first
// size mod n pieces get one extra element: 1000/512 -> [500, 500],
// 14/10 -> [7, 7], 5/4 -> [3, 2]. max_size <= 0 means no split.
std::vector<std::int64_t> balanced_split(std::int64_t size, std::int64_t max_size);

// Start offsets of consecutive pieces (same length as pieces).
std::vector<std::int64_t> split_offsets(const std::vector<std::int64_t>& pieces);

// The tile grid of one [out, in] matrix: rows of tiles along the outputs,
// columns along the inputs. Tile (r, c) holds W[out_offsets[r] + .., in_offsets[c] + ..].
struct TileGrid {
  std::int64_t out_size = 0, in_size = 0;
  std::int64_t max_out = 0, max_in = 0;  // physical tile size (<= 0: unbounded)
  std::vector<std::int64_t> out_pieces, in_pieces, out_offsets, in_offsets;

  std::int64_t tiles() const { return static_cast<std::int64_t>(out_pieces.size() * in_pieces.size()); }
  // Fraction of the physical tiles' cells that hold weights; an unbounded
  // side counts as large as its largest piece.
  double utilisation() const;
};

// The most tiles one layer may map onto: beyond it (1x1 tiles would make a
// 784x256 layer 200 704 tiles, minutes and hundreds of MB per evaluation)
// make_tile_grid throws ConfigError naming the tile count and the limit.
constexpr std::int64_t kMaxTilesPerLayer = 16384;

TileGrid make_tile_grid(std::int64_t out_size, std::int64_t in_size, std::int64_t max_out, std::int64_t max_in);

// A convolution's tile grid: the input side is split along input channels
// only, so the kernel_volume weights of one channel stay on one tile. Throws
// ConfigError when one channel's kernel exceeds max_in.
TileGrid make_conv_tile_grid(std::int64_t out_channels, std::int64_t in_channels, std::int64_t kernel_volume,
                             std::int64_t max_out, std::int64_t max_in);

}  // namespace aimc
