// Balanced tile splits (see split.h).
#include "layers/tiles/split.h"

#include <algorithm>
#include <string>

#include "engine/error.h"

namespace aimc {

std::vector<std::int64_t> balanced_split(std::int64_t size, std::int64_t max_size) {
  if (size < 1) throw ShapeError("cannot split a dimension of size " + std::to_string(size) + " into tiles");
  if (max_size <= 0 || size <= max_size) return {size};
  const std::int64_t n = (size + max_size - 1) / max_size;
  std::vector<std::int64_t> pieces(n, size / n);
  for (std::int64_t i = 0; i < size % n; ++i) ++pieces[i];
  return pieces;
}

std::vector<std::int64_t> split_offsets(const std::vector<std::int64_t>& pieces) {
  std::vector<std::int64_t> offsets(pieces.size());
  std::int64_t at = 0;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    offsets[i] = at;
    at += pieces[i];
  }
  return offsets;
}

}  // namespace aimc

namespace aimc {

double TileGrid::utilisation() const {
  // An unbounded side is as large as its largest piece.
  const double rows = max_out > 0 ? double(max_out) : double(*std::max_element(out_pieces.begin(), out_pieces.end()));
  const double cols = max_in > 0 ? double(max_in) : double(*std::max_element(in_pieces.begin(), in_pieces.end()));
  return double(out_size) * double(in_size) / (double(tiles()) * rows * cols);
}

namespace {

// Pieces balanced_split(size, max_size) makes, without making them.
std::int64_t piece_count(std::int64_t size, std::int64_t max_size) {
  return max_size <= 0 || size <= max_size ? 1 : (size + max_size - 1) / max_size;
}

// ConfigError when an [out_size, in_size] matrix would need more than
// kMaxTilesPerLayer tiles (out_tiles x in_tiles).
void check_tile_count(std::int64_t out_size, std::int64_t in_size, std::int64_t max_out, std::int64_t max_in,
                      std::int64_t out_tiles, std::int64_t in_tiles) {
  std::int64_t tiles = 0;
  if (__builtin_mul_overflow(out_tiles, in_tiles, &tiles) || tiles > kMaxTilesPerLayer)
    throw ConfigError("mapping: a [" + std::to_string(out_size) + ", " + std::to_string(in_size) +
                      "] layer on tiles of at most " + std::to_string(max_out) + " x " + std::to_string(max_in) +
                      " needs " + std::to_string(out_tiles) + " x " + std::to_string(in_tiles) +
                      " tiles, more than the limit of " + std::to_string(kMaxTilesPerLayer) +
                      " per layer (raise max_output_size / max_input_size)");
}

}  // namespace

TileGrid make_tile_grid(std::int64_t out_size, std::int64_t in_size, std::int64_t max_out, std::int64_t max_in) {
  if (out_size >= 1 && in_size >= 1)
    check_tile_count(out_size, in_size, max_out, max_in, piece_count(out_size, max_out), piece_count(in_size, max_in));
  TileGrid g;
  g.out_size = out_size;
  g.in_size = in_size;
  g.max_out = max_out;
  g.max_in = max_in;
  g.out_pieces = balanced_split(out_size, max_out);
  g.in_pieces = balanced_split(in_size, max_in);
  g.out_offsets = split_offsets(g.out_pieces);
  g.in_offsets = split_offsets(g.in_pieces);
  return g;
}

TileGrid make_conv_tile_grid(std::int64_t out_channels, std::int64_t in_channels, std::int64_t kernel_volume,
                             std::int64_t max_out, std::int64_t max_in) {
  if (max_in > 0 && kernel_volume > max_in)
    throw ConfigError("mapping: one input channel's kernel has " + std::to_string(kernel_volume) +
                      " weights, more than max_input_size = " + std::to_string(max_in) +
                      " (raise max_input_size or set it to 0)");
  TileGrid g = make_tile_grid(out_channels, in_channels * kernel_volume, max_out, 0);
  g.max_in = max_in;
  const std::int64_t channels_per_tile = max_in > 0 ? max_in / kernel_volume : 0;
  check_tile_count(out_channels, in_channels * kernel_volume, max_out, max_in, std::int64_t(g.out_pieces.size()),
                   piece_count(in_channels, channels_per_tile));
  g.in_pieces = balanced_split(in_channels, channels_per_tile);
  for (auto& p : g.in_pieces) p *= kernel_volume;
  g.in_offsets = split_offsets(g.in_pieces);
  return g;
}

}  // namespace aimc
