// The once-per-mini-batch step of a pulsed device (aihwkit's decay and
// diffusion, applied after every update), shared by the CPU kernel
// (kernels/cpu/pulsed_update.cpp) and its CUDA twin (kernels/cuda/pulsed_update.cu).
#pragma once

#include <cstdint>

#include "kernels/random_normal.h"

namespace aimc::analog {

// Which parts run (device-wide): decay when lifetime > 0, diffusion when
// diffusion > 0.
struct PostUpdateLaw {
  bool decay = false;
  bool diffuse = false;
};

// Philox blocks one post-update of `size` elements uses: the diffusion
// normals, four a block (rng::normal_at's layout); none without diffusion.
AIMC_HD std::uint64_t post_update_blocks(const PostUpdateLaw& law, std::int64_t size) {
  return law.diffuse ? std::uint64_t((size + 3) / 4) : 0u;
}

// Element k after one mini-batch: decay towards its reset bias,
// w ← (w − bias)·scale + bias (scale = 1 − 1/lifetime, per element), then
// diffusion w ← w + rate·ξ_k (ξ_k: normal k of the stream from `block`), then
// the clip to [min_bound, max_bound] (as std::min(max, std::max(min, w))).
AIMC_HD float pulsed_post_update_element(const PostUpdateLaw& law, float w, float max_bound, float min_bound,
                                         float scale, float bias, float rate, std::uint64_t seed,
                                         std::uint64_t stream, std::uint64_t block, std::uint64_t k) {
  if (law.decay) w = (w - bias) * scale + bias;
  if (law.diffuse) w += rate * rng::normal_at(seed, stream, block, k);
  w = min_bound < w ? w : min_bound;
  return w < max_bound ? w : max_bound;
}

}  // namespace aimc::analog
