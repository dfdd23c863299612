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

TileGrid make_tile_grid(std::int64_t out_size, std::int64_t in_size, std::int64_t max_out, std::int64_t max_in) {
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
  g.in_pieces = balanced_split(in_channels, channels_per_tile);
  for (auto& p : g.in_pieces) p *= kernel_volume;
  g.in_offsets = split_offsets(g.in_pieces);
  return g;
}

}  // namespace aimc
