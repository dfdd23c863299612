// Balanced tile splits and tile grids (REFERENCE.md section 2 and 7).
#include <catch2/catch.hpp>

#include "engine/error.h"
#include "layers/tiles/split.h"

using namespace aimc;
using V = std::vector<std::int64_t>;

TEST_CASE("balanced splits give the first size mod n pieces one extra") {
  CHECK(balanced_split(1000, 512) == V{500, 500});
  CHECK(balanced_split(14, 10) == V{7, 7});
  CHECK(balanced_split(5, 4) == V{3, 2});
  CHECK(balanced_split(1025, 512) == V{342, 342, 341});
  CHECK(balanced_split(512, 512) == V{512});
  CHECK(balanced_split(7, 0) == V{7});   // 0: no split
  CHECK(balanced_split(7, -1) == V{7});
  CHECK(split_offsets({342, 342, 341}) == V{0, 342, 684});
  CHECK_THROWS_AS(balanced_split(0, 4), ShapeError);
}

TEST_CASE("the mapped 14->5 linear with max sizes 10/4 is a 2x2 grid of [7,7]x[3,2]") {
  const TileGrid g = make_tile_grid(/*out=*/5, /*in=*/14, /*max_out=*/4, /*max_in=*/10);
  CHECK(g.out_pieces == V{3, 2});
  CHECK(g.in_pieces == V{7, 7});
  CHECK(g.tiles() == 4);
  CHECK(g.out_offsets == V{0, 3});
  CHECK(g.in_offsets == V{0, 7});
  CHECK(g.utilisation() == Approx(70.0 / (4 * 40)));
}

TEST_CASE("a 4096x4096 layer on 512x512 tiles is 64 full tiles") {
  const TileGrid g = make_tile_grid(4096, 4096, 512, 512);
  CHECK(g.tiles() == 64);
  CHECK(g.utilisation() == 1.0);
}

TEST_CASE("conv tile grids split along whole input channels") {
  // 3x3 kernels (9 weights a channel), 64 channels = 576 inputs, max 512:
  // at most 56 channels a tile -> channels split [32, 32] -> [288, 288].
  const TileGrid g = make_conv_tile_grid(/*out=*/128, /*in_channels=*/64, /*kernel_volume=*/9, 512, 512);
  CHECK(g.in_pieces == V{288, 288});
  CHECK(g.in_offsets == V{0, 288});
  CHECK(g.out_pieces == V{128});
  CHECK_THROWS_AS(make_conv_tile_grid(8, 4, 600, 512, 512), ConfigError);
  CHECK(make_conv_tile_grid(8, 4, 600, 512, 0).in_pieces == V{2400});  // 0: no split
}

TEST_CASE("a layer needing more than kMaxTilesPerLayer tiles is refused before any tile is made") {
  // 1x1 tiles: a 256x784 layer would be 200 704 tiles.
  CHECK_THROWS_AS(make_tile_grid(256, 784, 1, 1), ConfigError);
  CHECK_THROWS_WITH(make_tile_grid(256, 784, 1, 1),
                    Catch::Contains("256 x 784 tiles") && Catch::Contains(std::to_string(kMaxTilesPerLayer)));
  // Huge sizes do not allocate a piece list first.
  CHECK_THROWS_AS(make_tile_grid(std::int64_t(1) << 40, std::int64_t(1) << 40, 1, 1), ConfigError);
  CHECK_THROWS_AS(make_conv_tile_grid(4096, 4096, 1, 1, 1), ConfigError);
  // At the limit it is fine: 128 x 128 tiles.
  CHECK(make_tile_grid(128, 128, 1, 1).tiles() == kMaxTilesPerLayer);
  CHECK_THROWS_AS(make_tile_grid(129, 128, 1, 1), ConfigError);
}
