// Bulk draws from one counter-based Philox stream (kernels/random.h): value j
// comes from block `block + j/4`, so any slice of a stream can be drawn on its
// own (parallel chunks, CUDA threads) and gives the same bits.
//   fill_normal:  normals from rng::box_muller_fast on words (0,1) and (2,3)
//                 of each block (four per block).
//   fill_uniform: rng::uniform_open of each word (four per block).
#pragma once

#include <cstdint>

namespace aimc::cpu {

void fill_normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::int64_t count, float* z);
// z[r·count + j] = normal j from block firsts[r], for every r < rows: the bits
// of fill_normal(seed, stream, firsts[r], count, z + r·count) row by row, with
// the Box-Muller step vectorised across rows (short rows, e.g. a tile's output
// noise, would otherwise run it a few values at a time).
void fill_normal_rows(std::uint64_t seed, std::uint64_t stream, const std::uint64_t* firsts, std::int64_t rows,
                      std::int64_t count, float* z);

void fill_uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t block, std::int64_t count, float* u);

// Blocks blocks[k] of (seed, stream) for k < n, words out[4k .. 4k+3] (the
// bits of rng::philox), vectorised across blocks.
void philox_blocks(std::uint64_t seed, std::uint64_t stream, const std::uint64_t* blocks, std::int64_t n,
                   std::uint32_t* out);

}  // namespace aimc::cpu
