// Generator draws (see generator.h); blocks are filled in parallel chunks
// whose values depend only on their block index.
#include "engine/generator.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

#include "kernels/cpu/parallel.h"
#include "kernels/random.h"

namespace aimc {
namespace {

constexpr std::int64_t kBlocksPerChunk = 4096;

// Calls f(block_index, Block, first_value_index) for the blocks covering n values.
template <class F>
void for_blocks(std::uint64_t seed, std::uint64_t stream, std::uint64_t offset, std::int64_t n, F&& f) {
  const std::int64_t blocks = (n + 3) / 4;
  cpu::parallel_for(0, blocks, kBlocksPerChunk, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t b = lo; b < hi; ++b) f(rng::philox(seed, stream, offset + b), b * 4);
  });
}

}  // namespace

void Generator::uniform(float* out, std::int64_t n, float low, float high) {
  const float span = high - low;
  // low + span*u can round up to high; keep the interval half-open as PyTorch.
  const float top = span > 0 ? std::nextafter(high, low) : high;
  for_blocks(seed_, stream_, offset_, n, [&](const rng::Block& r, std::int64_t i0) {
    for (int j = 0; j < 4 && i0 + j < n; ++j) out[i0 + j] = std::min(low + span * rng::uniform_open(r.v[j]), top);
  });
  offset_ += (n + 3) / 4;
}

void Generator::uniform(double* out, std::int64_t n, double low, double high) {
  // Two words a value: two values a block.
  const double span = high - low;
  const std::int64_t blocks = (n + 1) / 2;
  cpu::parallel_for(0, blocks, kBlocksPerChunk, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t b = lo; b < hi; ++b) {
      rng::Block r = rng::philox(seed_, stream_, offset_ + b);
      out[2 * b] = low + span * rng::uniform_open_double(r.v[0], r.v[1]);
      if (2 * b + 1 < n) out[2 * b + 1] = low + span * rng::uniform_open_double(r.v[2], r.v[3]);
    }
  });
  offset_ += blocks;
}

void Generator::normal(float* out, std::int64_t n, float mean, float std) {
  for_blocks(seed_, stream_, offset_, n, [&](const rng::Block& r, std::int64_t i0) {
    float z[4];
    rng::box_muller(rng::uniform_open(r.v[0]), rng::uniform_open(r.v[1]), z[0], z[1]);
    rng::box_muller(rng::uniform_open(r.v[2]), rng::uniform_open(r.v[3]), z[2], z[3]);
    for (int j = 0; j < 4 && i0 + j < n; ++j) out[i0 + j] = mean + std * z[j];
  });
  offset_ += (n + 3) / 4;
}

void Generator::normal(double* out, std::int64_t n, double mean, double std) {
  // One Box-Muller pair of 53-bit uniforms a block.
  const std::int64_t blocks = (n + 1) / 2;
  cpu::parallel_for(0, blocks, kBlocksPerChunk, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t b = lo; b < hi; ++b) {
      rng::Block r = rng::philox(seed_, stream_, offset_ + b);
      const double u1 = rng::uniform_open_double(r.v[0], r.v[1]);
      const double u2 = rng::uniform_open_double(r.v[2], r.v[3]);
      const double rad = std::sqrt(-2.0 * std::log(u1));
      out[2 * b] = mean + std * rad * std::cos(6.283185307179586 * u2);
      if (2 * b + 1 < n) out[2 * b + 1] = mean + std * rad * std::sin(6.283185307179586 * u2);
    }
  });
  offset_ += blocks;
}

void Generator::bernoulli(float* out, std::int64_t n, float p) {
  for_blocks(seed_, stream_, offset_, n, [&](const rng::Block& r, std::int64_t i0) {
    for (int j = 0; j < 4 && i0 + j < n; ++j) out[i0 + j] = rng::uniform_open(r.v[j]) < p ? 1.f : 0.f;
  });
  offset_ += (n + 3) / 4;
}

void Generator::integers(std::uint32_t* out, std::int64_t n, std::uint32_t bound) {
  if (bound == 0) throw ValueError("Generator::integers: bound must be >= 1");
  for_blocks(seed_, stream_, offset_, n, [&](const rng::Block& r, std::int64_t i0) {
    for (int j = 0; j < 4 && i0 + j < n; ++j)
      out[i0 + j] = static_cast<std::uint32_t>((static_cast<std::uint64_t>(r.v[j]) * bound) >> 32);
  });
  offset_ += (n + 3) / 4;
}

std::uint64_t Generator::next_u64() {
  const rng::Block r = rng::philox(seed_, stream_, offset_++);
  return (static_cast<std::uint64_t>(r.v[0]) << 32) | r.v[1];
}

std::vector<std::int64_t> Generator::permutation(std::int64_t n) {
  if (n < 0) throw ValueError("Generator::permutation: n must be >= 0, got " + std::to_string(n));
  std::vector<std::int64_t> p(n);
  for (std::int64_t i = 0; i < n; ++i) p[i] = i;
  if (n < 2) return p;
  // Fisher-Yates: position i swaps with j uniform in [0, i].
  std::vector<double> u(n);
  uniform(u.data(), n);
  for (std::int64_t i = n - 1; i > 0; --i) {
    auto j = static_cast<std::int64_t>(u[i] * static_cast<double>(i + 1));
    if (j > i) j = i;
    std::swap(p[i], p[j]);
  }
  return p;
}

Tensor Generator::uniform(const Shape& shape, double low, double high, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_float(dtype, "Generator::uniform", [&](auto tag) {
    using T = decltype(tag);
    uniform(t.data<T>(), t.numel(), static_cast<T>(low), static_cast<T>(high));
  });
  return t;
}

Tensor Generator::normal(const Shape& shape, double mean, double std, DType dtype) {
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_float(dtype, "Generator::normal", [&](auto tag) {
    using T = decltype(tag);
    normal(t.data<T>(), t.numel(), static_cast<T>(mean), static_cast<T>(std));
  });
  return t;
}

}  // namespace aimc
