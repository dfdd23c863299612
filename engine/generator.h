// Generator: a position in a counter-based Philox4x32-10 stream.
//
// (seed, stream) names the stream; `offset` counts the 128-bit blocks already
// consumed. A float32 draw of n values takes the next ceil(n/4) blocks (4
// values a block); a float64 draw (and permutation) ceil(n/2) blocks (two
// 32-bit words a value). Values depend only on (seed, stream, offset, n),
// never on threads. Save/restore the offset to resume.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace aimc {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0, std::uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  std::uint64_t seed() const { return seed_; }
  std::uint64_t stream() const { return stream_; }
  std::uint64_t offset() const { return offset_; }
  void set_offset(std::uint64_t blocks) { offset_ = blocks; }

  // A generator for a named sub-stream of this seed (e.g. per tile/purpose).
  Generator substream(std::uint64_t stream) const { return Generator(seed_, stream); }

  void uniform(float* out, std::int64_t n, float low = 0.f, float high = 1.f);
  void uniform(double* out, std::int64_t n, double low = 0., double high = 1.);
  void normal(float* out, std::int64_t n, float mean = 0.f, float std = 1.f);
  void normal(double* out, std::int64_t n, double mean = 0., double std = 1.);
  // 1 with probability p, else 0.
  void bernoulli(float* out, std::int64_t n, float p);
  // Uniform integers in [0, bound) (Lemire's multiply-shift; 32-bit bound).
  void integers(std::uint32_t* out, std::int64_t n, std::uint32_t bound);
  // One 64-bit value (one block), e.g. a seed for a sub-component.
  std::uint64_t next_u64();
  // A random permutation of 0..n-1 (Fisher-Yates driven by this stream).
  std::vector<std::int64_t> permutation(std::int64_t n);

  Tensor uniform(const Shape& shape, double low = 0., double high = 1., DType dtype = DType::Float32);
  Tensor normal(const Shape& shape, double mean = 0., double std = 1., DType dtype = DType::Float32);

 private:
  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t offset_ = 0;
};

}  // namespace aimc
