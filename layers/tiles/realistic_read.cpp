// Least-squares weight read-out (see realistic_read.h).
#include "layers/tiles/realistic_read.h"

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "engine/generator.h"
#include "layers/tiles/tile_array.h"

namespace aimc {

Tensor read_weights_realistic(AnalogTile& tile, std::uint64_t seed, std::uint64_t stream,
                              std::int64_t samples_per_input) {
  if (samples_per_input < 1)
    throw ConfigError("realistic read: samples_per_input must be >= 1, got " + std::to_string(samples_per_input));
  const std::int64_t in = tile.in_size(), out = tile.out_size(), m = samples_per_input * in;
  Generator gen(seed, stream);
  Tensor x = gen.uniform({m, in}, -1.0, 1.0);
  Tensor y = Tensor::empty({m, out});
  tile.forward(x.data<float>(), m, y.data<float>(), /*is_test=*/true);
  // Normal equations in double: (XᵀX) Wᵀ = XᵀY. XᵀX is well conditioned for
  // m >= in uniform random rows.
  using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> xf(x.data<float>(), m, in);
  Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> yf(y.data<float>(), m, out);
  const RowMat xd = xf.cast<double>(), yd = yf.cast<double>();
  const Eigen::MatrixXd xtx = xd.transpose() * xd;
  const Eigen::MatrixXd xty = xd.transpose() * yd;
  const Eigen::MatrixXd wt = xtx.ldlt().solve(xty);  // [in, out]
  Tensor w = Tensor::empty({out, in});
  float* p = w.data<float>();
  for (std::int64_t i = 0; i < out; ++i)
    for (std::int64_t j = 0; j < in; ++j) p[i * in + j] = static_cast<float>(wt(j, i));
  return w;
}

Tensor read_tile_array_realistic(TileArray& tiles, std::uint64_t seed, std::int64_t samples_per_input) {
  const TileGrid& g = tiles.grid();
  Tensor w = Tensor::empty({g.out_size, g.in_size});
  for (std::int64_t r = 0; r < tiles.rows(); ++r)
    for (std::int64_t c = 0; c < tiles.columns(); ++c) {
      AnalogTile& t = tiles.tile(r, c);
      w.slice(0, g.out_offsets[r], g.out_offsets[r] + g.out_pieces[r])
          .slice(1, g.in_offsets[c], g.in_offsets[c] + g.in_pieces[c])
          .copy_(read_weights_realistic(t, seed, t.tile_id(), samples_per_input));
    }
  return w;
}

}  // namespace aimc
