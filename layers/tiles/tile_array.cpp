// TileArray (see tile_array.h).
#include "layers/tiles/tile_array.h"

#include <cstring>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cuda/backend.h"

namespace aimc {
namespace {

using TileList = std::vector<std::shared_ptr<AnalogTile>>;

// Columns [c0, c0 + width) of a row-major [n, ld] matrix, as a contiguous copy
// (or the matrix itself when it is the whole width).
Tensor column_block(const Tensor& m, std::int64_t c0, std::int64_t width) {
  if (c0 == 0 && width == m.size(1)) return m;
  return m.slice(1, c0, c0 + width).contiguous();
}

// The input of every tile t = r·C + c (detached, contiguous): its own
// inputs[t] (per_tile), else tile column c's slice of inputs[0].
std::vector<Tensor> tile_inputs(const std::vector<Tensor>& inputs, bool per_tile, const TileGrid& grid) {
  const auto R = std::int64_t(grid.out_pieces.size()), C = std::int64_t(grid.in_pieces.size());
  std::vector<Tensor> x_tiles(R * C);
  if (per_tile) {
    for (std::int64_t t = 0; t < R * C; ++t) x_tiles[t] = inputs[t].detach().contiguous();
    return x_tiles;
  }
  const Tensor x = inputs[0].detach().contiguous();
  for (std::int64_t c = 0; c < C; ++c) {
    const Tensor col = column_block(x, grid.in_offsets[c], grid.in_pieces[c]);
    for (std::int64_t r = 0; r < R; ++r) x_tiles[r * C + c] = col;
  }
  return x_tiles;
}

// dst[:, c0 + j] += src[:, j] (or = when first) for a row-major [n, width] src.
void add_columns(const float* src, std::int64_t n, std::int64_t width, float* dst, std::int64_t ld, std::int64_t c0,
                 bool first) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float* s = src + i * width;
    float* d = dst + i * ld + c0;
    if (first) std::memcpy(d, s, sizeof(float) * width);
    else
      for (std::int64_t j = 0; j < width; ++j) d[j] += s[j];
  }
}

}  // namespace

TileArray::TileArray(const TileGrid& grid, const IOParameters& forward_io, const IOParameters& backward_io,
                     std::uint64_t seed, std::uint64_t first_tile_id)
    : grid_(grid), tiles_(std::make_shared<TileList>()) {
  for (std::size_t r = 0; r < grid.out_pieces.size(); ++r)
    for (std::size_t c = 0; c < grid.in_pieces.size(); ++c)
      tiles_->push_back(std::make_shared<AnalogTile>(grid.out_pieces[r], grid.in_pieces[c], forward_io, backward_io,
                                                     seed, first_tile_id + r * grid.in_pieces.size() + c));
}

std::vector<AnalogTile*> TileArray::tiles() {
  std::vector<AnalogTile*> out;
  for (auto& t : *tiles_) out.push_back(t.get());
  return out;
}

Tensor TileArray::forward(const Tensor& x_in, bool is_test, std::vector<float> weight_grad_scale,
                          std::vector<Tensor> modified_weights) {
  if (x_in.dim() != 2 || x_in.size(1) != in_size())
    throw ShapeError("TileArray: input " + shape_str(x_in.shape()) + " does not match [N, " +
                     std::to_string(in_size()) + "]");
  return run({x_in}, {}, is_test, std::move(weight_grad_scale), std::move(modified_weights));
}

Tensor TileArray::forward_tiles(const std::vector<Tensor>& tile_inputs, const std::vector<float>& tile_factors,
                                bool is_test, std::vector<float> weight_grad_scale,
                                std::vector<Tensor> modified_weights) {
  if (std::int64_t(tile_inputs.size()) != grid_.tiles() || std::int64_t(tile_factors.size()) != grid_.tiles())
    throw ShapeError("TileArray::forward_tiles: " + std::to_string(tile_inputs.size()) + " inputs and " +
                     std::to_string(tile_factors.size()) + " factors for " + std::to_string(grid_.tiles()) +
                     " tiles");
  for (std::int64_t t = 0; t < grid_.tiles(); ++t) {
    const Tensor& x = tile_inputs[t];
    if (x.dim() != 2 || x.size(1) != grid_.in_pieces[t % columns()] || x.size(0) != tile_inputs[0].size(0))
      throw ShapeError("TileArray::forward_tiles: input of tile " + std::to_string(t) + " is " +
                       shape_str(x.shape()) + ", expected [N, " + std::to_string(grid_.in_pieces[t % columns()]) +
                       "]");
  }
  return run(tile_inputs, tile_factors, is_test, std::move(weight_grad_scale), std::move(modified_weights));
}

Tensor TileArray::run(const std::vector<Tensor>& inputs, const std::vector<float>& tile_factors, bool is_test,
                      std::vector<float> weight_grad_scale, std::vector<Tensor> modified_weights) {
  if (!modified_weights.empty() && std::int64_t(modified_weights.size()) != grid_.tiles())
    throw ShapeError("TileArray: " + std::to_string(modified_weights.size()) + " modified weights for " +
                     std::to_string(grid_.tiles()) + " tiles");
  if (weight_grad_scale.size() > 1 && std::int64_t(weight_grad_scale.size()) != out_size())
    throw ShapeError("TileArray: weight_grad_scale has " + std::to_string(weight_grad_scale.size()) +
                     " entries, expected 0, 1 or " + std::to_string(out_size()));
  const Device where = tile(0, 0).weight().device();
  for (const Tensor& x : inputs) {
    check_dtype(x, DType::Float32, "TileArray");
    if (x.device() != where)
      throw DeviceError("TileArray: the input is on " + x.device().str() + ", the tiles on " + where.str() +
                        " (move the layer or the input with .to(device))");
  }
  if (where.is_cuda()) return run_cuda(inputs, tile_factors, is_test, std::move(weight_grad_scale),
                                       std::move(modified_weights));
  const bool per_tile = !tile_factors.empty();
  const std::int64_t n = inputs[0].size(0), R = rows(), C = columns();

  const std::vector<Tensor> x_tiles = tile_inputs(inputs, per_tile, grid_);
  std::vector<Tensor> partial(R * C);
  TileList& tiles = *tiles_;
  cpu::parallel_for(0, R * C, 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t t = lo; t < hi; ++t) {
      const std::int64_t r = t / C;
      partial[t] = Tensor::empty({n, grid_.out_pieces[r]});
      tiles[t]->forward(x_tiles[t].data<float>(), n, partial[t].data<float>(), is_test,
                        modified_weights.empty() ? nullptr : modified_weights[t].data<float>());
      if (per_tile && tile_factors[t] != 1.f) {
        float* p = partial[t].data<float>();
        for (std::int64_t i = 0; i < partial[t].numel(); ++i) p[i] *= tile_factors[t];
      }
    }
  });
  // One tile: its output is the result. Otherwise sum each tile row's
  // partial outputs in the fixed order c = 0, 1, ...
  Tensor y = R * C == 1 ? partial[0] : Tensor::empty({n, out_size()});
  if (R * C > 1)
    for (std::int64_t r = 0; r < R; ++r)
      for (std::int64_t c = 0; c < C; ++c)
        add_columns(partial[r * C + c].data<float>(), n, grid_.out_pieces[r], y.data<float>(), out_size(),
                    grid_.out_offsets[r], c == 0);

  std::vector<Tensor> graph_inputs = inputs;
  for (auto& t : tiles) graph_inputs.push_back(t->weight());
  auto tiles_ref = tiles_;
  const TileGrid grid = grid_;
  // The backward pass of the tiles runs only when an input wants its
  // gradient (not for a first layer fed with data), as in aihwkit.
  const bool input_grad = any_requires_grad(inputs);
  return record(y, "tile_array", graph_inputs, [tiles_ref, grid, x_tiles, tile_factors, per_tile, is_test, input_grad,
                                                weight_grad_scale, modified_weights](const Tensor& g_in) {
    const Tensor g = g_in.contiguous();
    const std::int64_t n = g.size(0), R = grid.out_pieces.size(), C = grid.in_pieces.size();
    TileList& tiles = *tiles_ref;
    std::vector<Tensor> d_rows(R);
    for (std::int64_t r = 0; r < R; ++r) d_rows[r] = column_block(g, grid.out_offsets[r], grid.out_pieces[r]);
    std::vector<Tensor> dx_part(R * C), dw(R * C);
    cpu::parallel_for(0, R * C, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t t = lo; t < hi; ++t) {
        const std::int64_t r = t / C, c = t % C;
        // The gradient reaching tile t: its row's, times the tile's output factor.
        Tensor d = d_rows[r];
        if (per_tile && tile_factors[t] != 1.f) d = mul_scalar(d_rows[r], tile_factors[t]).contiguous();
        if (input_grad) {
          dx_part[t] = Tensor::empty({n, grid.in_pieces[c]});
          tiles[t]->backward(d.data<float>(), n, dx_part[t].data<float>(), is_test,
                             modified_weights.empty() ? nullptr : modified_weights[t].data<float>());
        }
        if (tiles[t]->pulsed()) {
          // The devices learn from x and d (AnalogSGD); no weight gradient.
          continue;
        }
        // dW_rc = d_rᵀ x_rc: [out_r, in_c].
        dw[t] = Tensor::empty({grid.out_pieces[r], grid.in_pieces[c]});
        cpu::gemm(cpu::gemm_shape(/*trans_a=*/true, /*trans_b=*/false, grid.out_pieces[r], grid.in_pieces[c], n),
                  1.0f, d.data<float>(), x_tiles[t].data<float>(), 0.0f, dw[t].data<float>());
        if (!weight_grad_scale.empty()) {
          float* w = dw[t].data<float>();
          for (std::int64_t i = 0; i < grid.out_pieces[r]; ++i) {
            const float f = weight_grad_scale.size() == 1 ? weight_grad_scale[0]
                                                          : weight_grad_scale[grid.out_offsets[r] + i];
            for (std::int64_t j = 0; j < grid.in_pieces[c]; ++j) w[i * grid.in_pieces[c] + j] *= f;
          }
        }
      }
    });
    // Recorded on the calling thread, in tile order. A row block is a copy of
    // the gradient except for one tile row (the gradient itself, which the
    // engine owns): only that is copied.
    for (std::int64_t t = 0; t < R * C; ++t) {
      if (!tiles[t]->pulsed()) continue;
      Tensor d = d_rows[t / C];
      if (per_tile && tile_factors[t] != 1.f) d = mul_scalar(d, tile_factors[t]).contiguous();
      else if (R == 1) d = d.clone();
      tiles[t]->record_update(x_tiles[t], d);
    }
    std::vector<Tensor> grads;
    if (!input_grad) {
      grads.resize(per_tile ? R * C : 1);  // undefined: no gradient wanted
    } else if (per_tile) {
      grads = dx_part;
    } else {
      Tensor dx = Tensor::empty({n, grid.in_size});
      for (std::int64_t c = 0; c < C; ++c)
        for (std::int64_t r = 0; r < R; ++r)
          add_columns(dx_part[r * C + c].data<float>(), n, grid.in_pieces[c], dx.data<float>(), grid.in_size,
                      grid.in_offsets[c], r == 0);
      grads.push_back(dx);
    }
    grads.insert(grads.end(), dw.begin(), dw.end());
    return grads;
  });
}

namespace {

// The tile row sums on CUDA: y[:, row r] = Σ_c parts[r·C + c] in the order
// c = 0, 1, ... (float adds, as add_columns), the rows side by side.
Tensor sum_tile_rows(std::vector<Tensor> parts, std::int64_t R, std::int64_t C) {
  std::vector<Tensor> rows(R);
  for (std::int64_t r = 0; r < R; ++r) {
    rows[r] = parts[r * C];
    for (std::int64_t c = 1; c < C; ++c) rows[r] = add(rows[r], parts[r * C + c]);
  }
  return R == 1 ? rows[0] : concat(rows, 1);
}

// The input gradient on CUDA: column block c = Σ_r parts[r·C + c] in the
// order r = 0, 1, ..., the blocks side by side.
Tensor sum_tile_columns(const std::vector<Tensor>& parts, std::int64_t R, std::int64_t C) {
  std::vector<Tensor> cols(C);
  for (std::int64_t c = 0; c < C; ++c) {
    cols[c] = parts[c];
    for (std::int64_t r = 1; r < R; ++r) cols[c] = add(cols[c], parts[r * C + c]);
  }
  return C == 1 ? cols[0] : concat(cols, 1);
}

}  // namespace

// The same pass with the tiles on a GPU: the tiles run one after another on
// device pointers (AnalogTile's CUDA passes), the digital sums and factors
// are engine ops on the device with the CPU's per-element arithmetic, and the
// weight gradients are cuda::gemm with cpu::gemm's shapes. No host pointer
// is read.
Tensor TileArray::run_cuda(const std::vector<Tensor>& inputs, const std::vector<float>& tile_factors, bool is_test,
                           std::vector<float> weight_grad_scale, std::vector<Tensor> modified_weights) {
  // The digital steps below read detached tensors: recorded as one tile_array op.
  const Device where = inputs[0].device();
  const bool per_tile = !tile_factors.empty();
  const std::int64_t n = inputs[0].size(0), R = rows(), C = columns();
  const std::vector<Tensor> x_tiles = tile_inputs(inputs, per_tile, grid_);
  for (Tensor& m : modified_weights) m = m.detach().to(where).contiguous();
  TileList& tiles = *tiles_;
  std::vector<Tensor> partial(R * C);
  for (std::int64_t t = 0; t < R * C; ++t) {
    partial[t] = Tensor::empty({n, grid_.out_pieces[t / C]}, DType::Float32, where);
    tiles[t]->forward(x_tiles[t].data<float>(), n, partial[t].data<float>(), is_test,
                      modified_weights.empty() ? nullptr : modified_weights[t].data<float>());
    if (per_tile && tile_factors[t] != 1.f) partial[t] = mul_scalar(partial[t], tile_factors[t]);
  }
  Tensor y = sum_tile_rows(std::move(partial), R, C);

  // The weight-gradient factors as a device column per tile row ([out_r, 1]).
  std::vector<Tensor> grad_factor(R);
  if (!weight_grad_scale.empty())
    for (std::int64_t r = 0; r < R; ++r) {
      std::vector<float> f(static_cast<std::size_t>(grid_.out_pieces[r]));
      for (std::int64_t i = 0; i < grid_.out_pieces[r]; ++i)
        f[i] = weight_grad_scale.size() == 1 ? weight_grad_scale[0] : weight_grad_scale[grid_.out_offsets[r] + i];
      grad_factor[r] = Tensor::from_vector(f, {grid_.out_pieces[r], 1}).to(where);
    }
  std::vector<Tensor> graph_inputs = inputs;
  for (auto& t : tiles) graph_inputs.push_back(t->weight());
  auto tiles_ref = tiles_;
  const TileGrid grid = grid_;
  const bool input_grad = any_requires_grad(inputs);
  return record(y, "tile_array", graph_inputs, [tiles_ref, grid, x_tiles, tile_factors, per_tile, is_test, input_grad,
                                                grad_factor, modified_weights, where](const Tensor& g_in) {
    const Tensor g = g_in.contiguous();
    const std::int64_t n = g.size(0), R = grid.out_pieces.size(), C = grid.in_pieces.size();
    TileList& tiles = *tiles_ref;
    std::vector<Tensor> dx_part(R * C), dw(R * C);
    for (std::int64_t t = 0; t < R * C; ++t) {
      const std::int64_t r = t / C, c = t % C;
      Tensor d = column_block(g, grid.out_offsets[r], grid.out_pieces[r]);
      if (per_tile && tile_factors[t] != 1.f) d = mul_scalar(d, tile_factors[t]).contiguous();
      if (input_grad) {
        dx_part[t] = Tensor::empty({n, grid.in_pieces[c]}, DType::Float32, where);
        tiles[t]->backward(d.data<float>(), n, dx_part[t].data<float>(), is_test,
                           modified_weights.empty() ? nullptr : modified_weights[t].data<float>());
      }
      if (tiles[t]->pulsed()) {
        // The devices learn from x and d (AnalogSGD); no weight gradient.
        tiles[t]->record_update(x_tiles[t], d.data<float>() == g.data<float>() ? d.clone() : d);
        continue;
      }
      // dW_rc = d_rᵀ x_rc: [out_r, in_c].
      dw[t] = Tensor::empty({grid.out_pieces[r], grid.in_pieces[c]}, DType::Float32, where);
      cuda::backend().gemm(cpu::gemm_shape(/*trans_a=*/true, /*trans_b=*/false, grid.out_pieces[r],
                                           grid.in_pieces[c], n),
                           1.0f, d.data<float>(), x_tiles[t].data<float>(), 0.0f, dw[t].data<float>());
      if (grad_factor[r].defined()) dw[t] = mul(dw[t], grad_factor[r]);
    }
    std::vector<Tensor> grads;
    if (!input_grad) grads.resize(per_tile ? R * C : 1);
    else if (per_tile) grads = dx_part;
    else grads.push_back(sum_tile_columns(dx_part, R, C));
    grads.insert(grads.end(), dw.begin(), dw.end());
    return grads;
  });
}

Tensor TileArray::get_weights() const {
  const Device where = tile(0, 0).weight().device();
  if (where.is_cuda()) {
    // Tile rows side by side, then the rows stacked (device copies).
    std::vector<Tensor> row_blocks;
    for (std::int64_t r = 0; r < rows(); ++r) {
      std::vector<Tensor> cols;
      for (std::int64_t c = 0; c < columns(); ++c) cols.push_back(tile(r, c).weight().detach());
      row_blocks.push_back(cols.size() == 1 ? cols[0].clone() : concat(cols, 1));
    }
    return row_blocks.size() == 1 ? row_blocks[0] : concat(row_blocks, 0);
  }
  Tensor w = Tensor::empty({out_size(), in_size()});
  for (std::int64_t r = 0; r < rows(); ++r)
    for (std::int64_t c = 0; c < columns(); ++c)
      w.slice(0, grid_.out_offsets[r], grid_.out_offsets[r] + grid_.out_pieces[r])
          .slice(1, grid_.in_offsets[c], grid_.in_offsets[c] + grid_.in_pieces[c])
          .copy_(tile(r, c).weight());
  return w;
}

void TileArray::set_weights(const Tensor& weights) {
  if (weights.shape() != Shape{out_size(), in_size()})
    throw ShapeError("TileArray::set_weights: got " + shape_str(weights.shape()) + ", expected " +
                     shape_str({out_size(), in_size()}));
  NoGradGuard no_grad;
  for (std::int64_t r = 0; r < rows(); ++r)
    for (std::int64_t c = 0; c < columns(); ++c) {
      tile(r, c).weight().copy_(weights.slice(0, grid_.out_offsets[r], grid_.out_offsets[r] + grid_.out_pieces[r])
                                    .slice(1, grid_.in_offsets[c], grid_.in_offsets[c] + grid_.in_pieces[c]));
      tile(r, c).weights_set();
    }
}

}  // namespace aimc
