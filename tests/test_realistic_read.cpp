// Realistic weight read-out: least squares through the tile's forward.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/generator.h"
#include "layers/tiles/realistic_read.h"

using namespace aimc;

TEST_CASE("a perfect tile reads back its exact weights") {
  IOParameters perfect;
  perfect.is_perfect = true;
  AnalogTile tile(6, 9, perfect, perfect, 1, 0);
  tile.weight().detach().copy_(Generator(2).uniform({6, 9}, -0.5, 0.5));
  const auto w = tile.weight().to_vector();
  const auto r = read_weights_realistic(tile, 3, 4).to_vector();
  for (std::size_t i = 0; i < w.size(); ++i) CHECK(r[i] == Approx(w[i]).margin(1e-5));
}

TEST_CASE("a noisy tile reads back within the noise of the least-squares estimate") {
  // Default IO: out_noise 0.06 on outputs of order 1 (after NM scaling by
  // max|x| <= 1). With m = 10*in = 320 samples the estimate's error per weight
  // is about 0.06 * sqrt(3/m) ~ 0.006 (x ~ U(-1,1) has variance 1/3) plus
  // quantisation; we require an RMS error below 0.02 and a clearly nonzero one.
  IOParameters io;
  AnalogTile tile(16, 32, io, io, 5, 0);
  tile.weight().detach().copy_(Generator(6).uniform({16, 32}, -0.3, 0.3));
  const auto w = tile.weight().to_vector();
  const auto r = read_weights_realistic(tile, 7, 8).to_vector();
  double se = 0;
  for (std::size_t i = 0; i < w.size(); ++i) se += (r[i] - w[i]) * (r[i] - w[i]);
  const double rms = std::sqrt(se / w.size());
  CHECK(rms < 0.02);
  CHECK(rms > 1e-4);
}
