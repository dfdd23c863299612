// TileArray: the scheduler that maps one weight matrix [out, in] onto a grid
// of AnalogTiles (layers/tiles/split.h) and runs them.
//
// Forward: every tile (r, c) computes analog(W_rc · x_c) for its input slice
// x_c; the tiles run in parallel (oneTBB) and the partial outputs of a tile
// row are summed digitally in float32 in the fixed order c = 0, 1, ..., so
// results do not depend on the thread count. Backward runs each tile's
// analog transposed pass with its backward IOParameters and sums over r; the
// weight gradient of tile (r, c) is d_rᵀ · x_c (hardware-aware training).
// With the tiles on a GPU (Module::to) the inputs must be there too, and the
// passes, sums and gradients run there, in the same order.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/tensor.h"
#include "layers/tiles/analog_tile.h"
#include "layers/tiles/split.h"

namespace aimc {

class TileArray {
 public:
  // Tile (r, c) gets tile id first_tile_id + r * columns + c.
  TileArray(const TileGrid& grid, const IOParameters& forward_io, const IOParameters& backward_io,
            std::uint64_t seed, std::uint64_t first_tile_id = 0);

  const TileGrid& grid() const { return grid_; }
  std::int64_t out_size() const { return grid_.out_size; }
  std::int64_t in_size() const { return grid_.in_size; }
  std::int64_t rows() const { return static_cast<std::int64_t>(grid_.out_pieces.size()); }
  std::int64_t columns() const { return static_cast<std::int64_t>(grid_.in_pieces.size()); }
  AnalogTile& tile(std::int64_t r, std::int64_t c) { return *tiles_->at(r * columns() + c); }
  const AnalogTile& tile(std::int64_t r, std::int64_t c) const { return *tiles_->at(r * columns() + c); }
  std::vector<AnalogTile*> tiles();

  // x [N, in] float32 -> [N, out]; differentiable w.r.t. x and every tile's
  // weight. is_test: eval mode (noise-management statistics frozen).
  // weight_grad_scale: empty (factor 1), one factor for all rows, or one per
  // output row [out]: the tile-weight gradients of row i are multiplied by it
  // (AnalogCore divides them by the squared weight-scaling factor); the
  // gradient of x is not affected.
  // modified_weights: empty, or one [out_t, in_t] stand-in per tile (row-major
  // over the grid) used by the forward and backward passes instead of the
  // stored weights (weight modifiers); gradients still go to the stored ones.
  Tensor forward(const Tensor& x, bool is_test, std::vector<float> weight_grad_scale = {},
                 std::vector<Tensor> modified_weights = {});

  // The same with an input of its own for every tile (row-major over the
  // grid, [N, in_c]) and a digital factor per tile applied to its output
  // before the row sums (no gradient to the factors); each input receives
  // its tile's gradient. Used for per-tile input ranges.
  Tensor forward_tiles(const std::vector<Tensor>& tile_inputs, const std::vector<float>& tile_factors, bool is_test,
                       std::vector<float> weight_grad_scale = {}, std::vector<Tensor> modified_weights = {});

  // The whole matrix [out, in] assembled from the tiles (a copy), and its inverse.
  Tensor get_weights() const;
  void set_weights(const Tensor& weights);

 private:
  // inputs: {x} (tiles read their column's slice) or one per tile with tile_factors.
  Tensor run(const std::vector<Tensor>& inputs, const std::vector<float>& tile_factors, bool is_test,
             std::vector<float> weight_grad_scale, std::vector<Tensor> modified_weights);
  // run() with the tiles on a GPU (inputs on the same device).
  Tensor run_cuda(const std::vector<Tensor>& inputs, const std::vector<float>& tile_factors, bool is_test,
                  std::vector<float> weight_grad_scale, std::vector<Tensor> modified_weights);

  TileGrid grid_;
  // Shared with the backward rules of recorded graphs, which may outlive a pass.
  std::shared_ptr<std::vector<std::shared_ptr<AnalogTile>>> tiles_;
};

}  // namespace aimc
