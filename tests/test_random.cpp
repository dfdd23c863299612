// Philox4x32-10 known answers (Random123 tests/kat_vectors) and the
// statistics of the Generator's uniform, normal and bernoulli draws.
#include <Random123/philox.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "engine/generator.h"
#include "kernels/cpu/random_fill.h"
#include "kernels/random.h"

using namespace aimc;

TEST_CASE("philox4x32-10 matches Random123's published known-answer vectors") {
  struct Kat {
    std::uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const auto& k : kats) {
    // aimc's mapping: block = ctr[0] | ctr[1] << 32, stream = ctr[2] | ctr[3] << 32, seed = key.
    const std::uint64_t block = k.ctr[0] | (std::uint64_t(k.ctr[1]) << 32);
    const std::uint64_t stream = k.ctr[2] | (std::uint64_t(k.ctr[3]) << 32);
    const std::uint64_t seed = k.key[0] | (std::uint64_t(k.key[1]) << 32);
    const rng::Block r = rng::philox(seed, stream, block);
    for (int j = 0; j < 4; ++j) CHECK(r.v[j] == k.out[j]);
  }
}

TEST_CASE("philox_blocks gives the bits of rng::philox for any counters") {
  for (std::int64_t n : {1, 5, 16, 17, 100}) {
    std::vector<std::uint64_t> blocks(n);
    for (std::int64_t k = 0; k < n; ++k) blocks[k] = 3 + 7919 * std::uint64_t(k) + (k % 3 ? 0 : (0xffffffffull << 20));
    std::vector<std::uint32_t> out(4 * n);
    cpu::philox_blocks(0xa4093822299f31d0ull, 0x0370734413198a2eull, blocks.data(), n, out.data());
    for (std::int64_t k = 0; k < n; ++k) {
      const rng::Block r = rng::philox(0xa4093822299f31d0ull, 0x0370734413198a2eull, blocks[k]);
      for (int j = 0; j < 4; ++j) REQUIRE(out[4 * k + j] == r.v[j]);
    }
  }
}

TEST_CASE("fill_normal_rows gives each row the bits of fill_normal") {
  for (std::int64_t count : {1, 2, 6, 7, 16, 25, 120, 129, 400}) {
    const std::int64_t rows = 37;
    std::vector<std::uint64_t> firsts(rows);
    for (std::int64_t r = 0; r < rows; ++r) firsts[r] = 1000 + 7919 * std::uint64_t(r) + (r % 3 ? 0 : (1ull << 32));
    std::vector<float> z(rows * count), one(count);
    cpu::fill_normal_rows(42, 5 * 16 + 1, firsts.data(), rows, count, z.data());
    for (std::int64_t r = 0; r < rows; ++r) {
      cpu::fill_normal(42, 5 * 16 + 1, firsts[r], count, one.data());
      for (std::int64_t j = 0; j < count; ++j) REQUIRE(z[r * count + j] == one[j]);
    }
  }
}

TEST_CASE("uniform draws are the block words mapped to (0,1)") {
  Generator g(7, 3);
  std::vector<float> u(6);
  g.uniform(u.data(), 6);
  CHECK(g.offset() == 2);  // 6 values take two blocks
  const rng::Block b0 = rng::philox(7, 3, 0), b1 = rng::philox(7, 3, 1);
  CHECK(u[0] == rng::uniform_open(b0.v[0]));
  CHECK(u[3] == rng::uniform_open(b0.v[3]));
  CHECK(u[4] == rng::uniform_open(b1.v[0]));
  // Resuming from a saved offset continues the same stream.
  Generator h(7, 3);
  h.set_offset(1);
  std::vector<float> v(2);
  h.uniform(v.data(), 2);
  CHECK(v[0] == u[4]);
  CHECK(v[1] == u[5]);
}

TEST_CASE("uniform, normal and bernoulli statistics over 1e6 draws") {
  const std::int64_t n = 1000000;
  Generator g(2024, 1);
  std::vector<float> x(n);

  // Uniform(0,1): mean 1/2, variance 1/12. Standard error of the mean
  // sqrt(1/(12n)) = 2.9e-4; we allow 5 sigma.
  g.uniform(x.data(), n);
  double s = 0, s2 = 0, lo = 1, hi = 0;
  for (float v : x) { s += v; s2 += double(v) * v; lo = std::min<double>(lo, v); hi = std::max<double>(hi, v); }
  double mean = s / n, var = s2 / n - mean * mean;
  CHECK(std::abs(mean - 0.5) < 5 * std::sqrt(1.0 / (12.0 * n)));
  CHECK(std::abs(var - 1.0 / 12) < 5 * std::sqrt(1.0 / (180.0 * n)));  // var of U^2-type estimator ~ 1/180n
  CHECK(lo > 0.0);
  CHECK(hi < 1.0);

  // Normal(0,1): mean within 5/sqrt(n) = 0.005; variance within 5*sqrt(2/n) = 0.0071.
  g.normal(x.data(), n);
  s = s2 = 0;
  double s4 = 0;
  for (float v : x) { s += v; s2 += double(v) * v; s4 += double(v) * v * v * v; }
  mean = s / n;
  var = s2 / n - mean * mean;
  CHECK(std::abs(mean) < 5.0 / std::sqrt(double(n)));
  CHECK(std::abs(var - 1.0) < 5 * std::sqrt(2.0 / n));
  CHECK(std::abs(s4 / n - 3.0) < 5 * std::sqrt(96.0 / n));  // kurtosis 3; var of x^4 is 105-9 = 96

  // Float64 normals too.
  std::vector<double> xd(n);
  g.normal(xd.data(), n, 2.0, 3.0);
  s = s2 = 0;
  for (double v : xd) { s += v; s2 += v * v; }
  mean = s / n;
  var = s2 / n - mean * mean;
  CHECK(std::abs(mean - 2.0) < 5 * 3.0 / std::sqrt(double(n)));
  CHECK(std::abs(var - 9.0) < 5 * 9.0 * std::sqrt(2.0 / n));

  // Bernoulli(0.3): fraction within 5*sqrt(p(1-p)/n) = 0.0023.
  g.bernoulli(x.data(), n, 0.3f);
  s = 0;
  std::int64_t other = 0;
  for (float v : x) { other += (v != 0.f && v != 1.f); s += v; }
  CHECK(other == 0);
  CHECK(std::abs(s / n - 0.3) < 5 * std::sqrt(0.21 / n));
}

TEST_CASE("integers are uniform over the bound and permutations are permutations") {
  Generator g(5);
  const std::int64_t n = 600000;
  std::vector<std::uint32_t> k(n);
  g.integers(k.data(), n, 6);
  std::vector<std::int64_t> counts(6, 0);
  for (auto v : k) {
    REQUIRE(v < 6);
    ++counts[v];
  }
  // Each count ~ Binomial(n, 1/6): sd = sqrt(n*(1/6)*(5/6)) = 288.7; 5 sd.
  for (auto c : counts) CHECK(std::abs(double(c) - n / 6.0) < 5 * 288.7);

  auto p = g.permutation(1000);
  std::vector<int> seen(1000, 0);
  for (auto v : p) seen[v]++;
  for (int c : seen) CHECK(c == 1);
  CHECK(p != Generator(5).permutation(1000));  // a different stream position
}

TEST_CASE("different streams and seeds give different numbers") {
  std::vector<float> a(8), b(8), c(8);
  Generator(1, 0).normal(a.data(), 8);
  Generator(1, 1).normal(b.data(), 8);
  Generator(2, 0).normal(c.data(), 8);
  CHECK(a != b);
  CHECK(a != c);
}
