// Tests of the hardware-aware-training weight transforms
// (layers/tiles/weight_transforms.h): every modifier type against its formula
// (noise-free parts exactly, noise statistics on 1e5 elements), input never
// changed, determinism for 1 and 2 threads, clip and remap known answers.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/error.h"
#include "engine/generator.h"
#include "kernels/cpu/parallel.h"
#include "layers/tiles/weight_transforms.h"

using namespace aimc;

namespace {

using MT = WeightModifierType;

Tensor mat(const std::vector<float>& v, std::int64_t rows, std::int64_t cols) {
  return Tensor::from_vector(v, Shape{rows, cols});
}

// 400 x 250 = 1e5 weights uniform in [-1, 1] (row r scaled by row_scale(r)).
Tensor random_weights(std::uint64_t seed, bool scale_rows = false) {
  Generator g(seed);
  Tensor w = g.uniform(Shape{400, 250}, -1.0, 1.0);
  if (scale_rows) {
    float* x = w.data<float>();
    for (std::int64_t r = 0; r < 400; ++r)
      for (std::int64_t c = 0; c < 250; ++c) x[r * 250 + c] *= 0.1f + 0.9f * static_cast<float>(r) / 399.0f;
  }
  return w;
}

float abs_max(const std::vector<float>& v) {
  float m = 0.0f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

struct Moments {
  double mean = 0.0, std = 0.0;
};

Moments moments(const std::vector<double>& z) {
  Moments m;
  for (double v : z) m.mean += v;
  m.mean /= static_cast<double>(z.size());
  for (double v : z) m.std += (v - m.mean) * (v - m.mean);
  m.std = std::sqrt(m.std / static_cast<double>(z.size() - 1));
  return m;
}

// Standard-normal checks for 1e5 draws: |mean| < 0.015 (~5 SE), std within 1.5 %.
void check_standard_normal(const std::vector<double>& z) {
  REQUIRE(z.size() >= 100000);
  const Moments m = moments(z);
  CHECK(std::fabs(m.mean) < 0.015);
  CHECK(m.std == Approx(1.0).epsilon(0.015));
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.numel() == b.numel() &&
         std::memcmp(a.data<float>(), b.data<float>(), static_cast<std::size_t>(a.numel()) * sizeof(float)) == 0;
}

WeightModifierParameter modifier(MT type) {
  WeightModifierParameter p;
  p.type = type;
  return p;
}

}  // namespace

TEST_CASE("weight modifier: NONE and COPY return an equal new tensor and draw nothing") {
  const Tensor w = random_weights(1);
  for (MT t : {MT::None, MT::Copy, MT::DropConnect}) {
    std::uint64_t blocks = 99;
    const Tensor out = apply_weight_modifier(w, modifier(t), 1, 0, 0, &blocks);
    CHECK(same_bits(out, w));
    CHECK(out.data<float>() != w.data<float>());
    CHECK(blocks == 0);
  }
}

TEST_CASE("weight modifier never changes its input, for every type") {
  const Tensor w = random_weights(2);
  const std::vector<float> before = w.to_vector();
  for (int k = 0; k <= static_cast<int>(MT::Copy); ++k) {
    WeightModifierParameter p = modifier(static_cast<MT>(k));
    p.std_dev = 0.1f;
    p.res = 0.1f;
    p.sto_round = true;
    p.pdrop = 0.1f;
    const Tensor out = apply_weight_modifier(w, p, 5, 1, 0, nullptr);
    CHECK(w.to_vector() == before);
    CHECK(out.data<float>() != w.data<float>());
  }
}

TEST_CASE("DISCRETIZE known answers: tile max, per channel, assumed wmax") {
  const Tensor w = mat({2.0f, -0.9f, 0.3f, 0.5f, -1.0f, 0.3f}, 2, 3);
  WeightModifierParameter p = modifier(MT::Discretize);
  p.res = 0.25f;
  std::uint64_t blocks = 1;
  // a = 2: w/a/res = 4, -1.8, 0.6 | 1, -2, 0.6 -> 4, -2, 1 | 1, -2, 1 (x 0.5).
  CHECK(apply_weight_modifier(w, p, 0, 0, 0, &blocks).to_vector() ==
        std::vector<float>{2.0f, -1.0f, 0.5f, 0.5f, -1.0f, 0.5f});
  CHECK(blocks == 0);
  // Row 1 has a = 1: 2, -4, 1.2 -> 2, -4, 1 (x 0.25).
  p.type = MT::DiscretizePerChannel;
  CHECK(apply_weight_modifier(w, p, 0, 0, 0, nullptr).to_vector() ==
        std::vector<float>{2.0f, -1.0f, 0.5f, 0.5f, -1.0f, 0.25f});
  // a = assumed_wmax = 4: steps of 1.
  // A non-contiguous (transposed) input gives the transposed answer.
  const Tensor wt = mat({2.0f, 0.5f, -0.9f, -1.0f, 0.3f, 0.3f}, 3, 2).transpose(0, 1);
  CHECK(apply_weight_modifier(wt, p, 0, 0, 0, nullptr).to_vector() ==
        std::vector<float>{2.0f, -1.0f, 0.5f, 0.5f, -1.0f, 0.25f});
  p.type = MT::Discretize;
  p.rel_to_actual_wmax = false;
  p.assumed_wmax = 4.0f;
  CHECK(apply_weight_modifier(w, p, 0, 0, 0, nullptr).to_vector() ==
        std::vector<float>{2.0f, -1.0f, 0.0f, 1.0f, -1.0f, 0.0f});
}

TEST_CASE("DISCRETIZE with stochastic rounding is unbiased") {
  std::vector<float> v(100000, 0.3f);
  v[0] = 1.0f;  // a = 1
  WeightModifierParameter p = modifier(MT::Discretize);
  p.res = 0.25f;
  p.sto_round = true;
  std::uint64_t blocks = 0;
  const std::vector<float> out = apply_weight_modifier(mat(v, 400, 250), p, 11, 0, 0, &blocks).to_vector();
  CHECK(blocks == 25000);
  double sum = 0.0;
  for (std::size_t i = 1; i < out.size(); ++i) {
    REQUIRE((out[i] == 0.25f || out[i] == 0.5f));
    sum += out[i];
  }
  // Each value has std 0.1; the mean of 1e5 has SE 3.2e-4.
  CHECK(sum / (out.size() - 1) == Approx(0.3).margin(0.0015));
}

TEST_CASE("ADD_NORMAL adds std_dev * max|W| * xi, per channel with the row max") {
  const Tensor w = random_weights(3, true);
  const std::vector<float> x = w.to_vector();
  const float a = abs_max(x);
  WeightModifierParameter p = modifier(MT::AddNormal);
  p.std_dev = 0.05f;
  std::uint64_t blocks = 0;
  std::vector<float> out = apply_weight_modifier(w, p, 21, 0, 0, &blocks).to_vector();
  CHECK(blocks == 25000);
  std::vector<double> z(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) z[i] = (double(out[i]) - x[i]) / (0.05 * a);
  check_standard_normal(z);

  p.type = MT::AddNormalPerChannel;
  out = apply_weight_modifier(w, p, 21, 0, 0, nullptr).to_vector();
  for (std::size_t r = 0; r < 400; ++r) {
    const std::vector<float> row(x.begin() + r * 250, x.begin() + (r + 1) * 250);
    const float ar = abs_max(row);
    for (std::size_t c = 0; c < 250; ++c) z[r * 250 + c] = (double(out[r * 250 + c]) - x[r * 250 + c]) / (0.05 * ar);
  }
  check_standard_normal(z);
}

TEST_CASE("MULT_NORMAL multiplies by 1 + std_dev * a * xi") {
  Tensor w = random_weights(4);
  float* x0 = w.data<float>();
  for (std::int64_t i = 0; i < w.numel(); ++i) x0[i] = (x0[i] < 0 ? -0.5f : 0.5f) + 0.5f * x0[i];  // |w| >= 0.5
  const std::vector<float> x = w.to_vector();
  const float a = abs_max(x);
  WeightModifierParameter p = modifier(MT::MultNormal);
  p.std_dev = 0.1f;
  const std::vector<float> out = apply_weight_modifier(w, p, 8, 2, 0, nullptr).to_vector();
  std::vector<double> z(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) z[i] = (double(out[i]) / x[i] - 1.0) / (0.1 * a);
  check_standard_normal(z);
}

TEST_CASE("DISCRETIZE_ADD_NORMAL discretises, then adds std_dev * a * xi (tile and per channel)") {
  const Tensor w = random_weights(5, true);
  const std::vector<float> x = w.to_vector();
  WeightModifierParameter p = modifier(MT::DiscretizeAddNormal);
  p.res = 0.125f;
  p.std_dev = 0.02f;
  for (bool per_channel : {false, true}) {
    p.type = per_channel ? MT::DiscretizeAddNormalPerChannel : MT::DiscretizeAddNormal;
    const std::vector<float> out = apply_weight_modifier(w, p, 9, 0, 0, nullptr).to_vector();
    std::vector<double> z(x.size());
    const float a_tile = abs_max(x);
    for (std::size_t r = 0; r < 400; ++r) {
      const std::vector<float> row(x.begin() + r * 250, x.begin() + (r + 1) * 250);
      const float a = per_channel ? abs_max(row) : a_tile;
      for (std::size_t c = 0; c < 250; ++c) {
        const std::size_t i = r * 250 + c;
        const float d = a * (0.125f * std::round(x[i] / a / 0.125f));
        z[i] = (double(out[i]) - d) / (0.02 * a);
      }
    }
    check_standard_normal(z);
  }
}

TEST_CASE("POLY noise has sigma a * std_dev * (c0 + c1 |w|/a + c2 (w/a)^2)") {
  const Tensor w = random_weights(6);
  const std::vector<float> x = w.to_vector();
  const float a = abs_max(x);
  WeightModifierParameter p = modifier(MT::Poly);
  p.std_dev = 2.0f;
  const std::vector<float> out = apply_weight_modifier(w, p, 10, 0, 0, nullptr).to_vector();
  std::vector<double> z(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double r = std::fabs(x[i]) / a;
    const double sig = a * 2.0 * (0.0105392 + 0.0768 * r - 0.046925 * r * r);
    z[i] = (double(out[i]) - x[i]) / sig;
  }
  check_standard_normal(z);
}

TEST_CASE("PROG_NOISE is POLY with std_dev / g_max and keeps the sign") {
  Tensor w = random_weights(7);
  float* x0 = w.data<float>();
  for (std::int64_t i = 0; i < w.numel(); ++i) x0[i] = (x0[i] < 0 ? -0.2f : 0.2f) + 0.8f * x0[i];  // |w| >= 0.2
  const std::vector<float> x = w.to_vector();
  const float a = abs_max(x);
  WeightModifierParameter p = modifier(MT::ProgNoise);
  p.std_dev = 1.0f;
  p.g_max = 25.0f;
  const std::vector<float> out = apply_weight_modifier(w, p, 12, 0, 0, nullptr).to_vector();
  std::vector<double> z(x.size());
  std::size_t sign_changes = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    sign_changes += (out[i] < 0) != (x[i] < 0);
    const double r = std::fabs(x[i]) / a;
    const double sig = a * (1.0 / 25.0) * (0.0105392 + 0.0768 * r - 0.046925 * r * r);
    z[i] = (double(out[i]) - x[i]) / sig;
  }
  CHECK(sign_changes == 0);
  check_standard_normal(z);
  // A zero weight comes out >= 0.
  const std::vector<float> zero = apply_weight_modifier(mat({0.0f, 1.0f}, 1, 2), p, 1, 0, 0, nullptr).to_vector();
  CHECK(zero[0] >= 0.0f);
}

TEST_CASE("DOREFA: res * round(tanh(w) * |clip / tanh(a)| / res)") {
  const Tensor w = mat({0.5f, -0.2f, 1.0f, 0.05f}, 2, 2);
  WeightModifierParameter p = modifier(MT::DoReFa);
  p.res = 0.1f;
  p.dorefa_clip = 0.6f;
  const std::vector<float> out = apply_weight_modifier(w, p, 0, 0, 0, nullptr).to_vector();
  // scale = 0.6/tanh(1) = 0.78776: 0.364 -> 0.4, -0.155 -> -0.2, 0.6 -> 0.6, 0.039 -> 0.
  CHECK(out[0] == Approx(0.4f).margin(1e-6));
  CHECK(out[1] == Approx(-0.2f).margin(1e-6));
  CHECK(out[2] == Approx(0.6f).margin(1e-6));
  CHECK(out[3] == 0.0f);
}

TEST_CASE("DROP_CONNECT zeroes a fraction pdrop, combined with other types after them") {
  std::vector<float> ones(100000, 1.0f);
  WeightModifierParameter p = modifier(MT::DropConnect);
  p.pdrop = 0.3f;
  std::uint64_t blocks = 0;
  std::vector<float> out = apply_weight_modifier(mat(ones, 400, 250), p, 13, 0, 0, &blocks).to_vector();
  CHECK(blocks == 25000);
  std::size_t zeros = 0;
  for (float v : out) {
    REQUIRE((v == 0.0f || v == 1.0f));
    zeros += v == 0.0f;
  }
  // SE of the fraction: 0.00145.
  CHECK(double(zeros) / out.size() == Approx(0.3).margin(0.007));

  // With ADD_NORMAL the noise section comes first, drop connect after it.
  p.type = MT::AddNormal;
  p.std_dev = 0.1f;
  out = apply_weight_modifier(mat(ones, 400, 250), p, 13, 0, 0, &blocks).to_vector();
  CHECK(blocks == 50000);
  WeightModifierParameter noise_only = p;
  noise_only.pdrop = 0.0f;
  const std::vector<float> noisy =
      apply_weight_modifier(mat(ones, 400, 250), noise_only, 13, 0, 0, nullptr).to_vector();
  zeros = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == 0.0f) ++zeros;
    else REQUIRE(out[i] == noisy[i]);
  }
  CHECK(double(zeros) / out.size() == Approx(0.3).margin(0.007));
}

TEST_CASE("copy_last_column leaves the last column exactly unchanged and out of max|W|") {
  std::vector<float> v = random_weights(14).to_vector();
  for (std::size_t r = 0; r < 400; ++r) v[r * 250 + 249] = 5.0f;  // a "bias" column
  const Tensor w = mat(v, 400, 250);
  WeightModifierParameter p = modifier(MT::AddNormal);
  p.std_dev = 0.05f;
  p.pdrop = 0.2f;
  p.copy_last_column = true;
  const std::vector<float> out = apply_weight_modifier(w, p, 15, 0, 0, nullptr).to_vector();
  std::vector<double> z;
  for (std::size_t r = 0; r < 400; ++r) {
    CHECK(out[r * 250 + 249] == 5.0f);
    for (std::size_t c = 0; c < 249; ++c)
      if (out[r * 250 + c] != 0.0f) z.push_back((double(out[r * 250 + c]) - v[r * 250 + c]) / 0.05);
  }
  // a = max over the first 249 columns (~1), not 5.
  const Moments m = moments(z);
  CHECK(m.std == Approx(1.0).epsilon(0.02));
}

TEST_CASE("PCM_NOISE: noise-free mapping, faults and programming / read statistics") {
  WeightModifierParameter p = modifier(MT::PCMNoise);
  p.std_dev = 0.0f;  // no programming or read noise, no drift at t_inference = 0
  const Tensor w = mat({0.8f, -0.4f, 0.0f, -1.6f, 0.1f, 0.3f}, 2, 3);
  std::uint64_t blocks = 0;
  std::vector<float> out = apply_weight_modifier(w, p, 1, 0, 0, &blocks).to_vector();
  CHECK(blocks == 12);  // 2 blocks per element
  const std::vector<float> x = w.to_vector();
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(out[i] == Approx(x[i]).margin(1e-6));

  // Every device at reset: all zero.
  p.pcm_prob_at_reset = 1.0f;
  out = apply_weight_modifier(w, p, 1, 0, 0, nullptr).to_vector();
  for (float v : out) CHECK(v == 0.0f);

  // Programming + read noise at t = t0 for g = 12.5 uS (w = a/2).
  std::vector<float> v(100000, 0.5f);
  v[0] = 1.0f;
  p = modifier(MT::PCMNoise);
  p.std_dev = 1.0f;
  out = apply_weight_modifier(mat(v, 400, 250), p, 17, 0, 0, nullptr).to_vector();
  std::vector<double> z(out.begin() + 1, out.end());
  const Moments m = moments(z);
  // Reference: Var(g) = E[(g_p - g)^2] + E[(g_p Qs(g_p) L)^2], g_p = g + σ_prog ξ,
  // L = sqrt(ln((20 + 2.5e-7)/5e-7)) = 4.184, integrated over ξ.
  const double g = 12.5, sp = 0.26348 + 1.9650 * 0.5 - 1.1731 * 0.25;
  const double L = std::sqrt(std::log((20.0 + 250e-9) / (2 * 250e-9)));
  CHECK(L == Approx(4.184).margin(0.001));
  double var = 0.0, mass = 0.0;
  for (double t = -8.0; t <= 8.0; t += 1e-3) {
    const double phi = std::exp(-0.5 * t * t) / std::sqrt(2 * M_PI) * 1e-3;
    const double gp = g + sp * t;
    const double qs = std::min(0.0088 / std::max(std::pow(std::fabs(gp) / 25.0, 0.65), 1e-3), 0.2);
    var += phi * (sp * sp * t * t + gp * gp * qs * qs * L * L);
    mass += phi;
  }
  const double expected_std = std::sqrt(var / mass) / 25.0;  // weight units (a = 1, g_max = 25)
  CHECK(m.mean == Approx(0.5).margin(0.001));
  CHECK(m.std == Approx(expected_std).epsilon(0.02));

  // Drift variation only: std_dev = 0, t_inference = 3600 s: E[(t/t0)^-|σ_ν ξ|], σ_ν = 0.008 at g_r = 0.5.
  p.std_dev = 0.0f;
  p.pcm_t_inference = 3600.0f;
  out = apply_weight_modifier(mat(v, 400, 250), p, 18, 0, 0, nullptr).to_vector();
  const double lr = std::log(3620.0 / 20.0);
  double mean_factor = 0.0;
  mass = 0.0;
  for (double t = -8.0; t <= 8.0; t += 1e-3) {
    const double phi = std::exp(-0.5 * t * t);
    mean_factor += phi * std::exp(-lr * 0.008 * std::fabs(t));
    mass += phi;
  }
  mean_factor /= mass;
  double sum = 0.0;
  for (std::size_t i = 1; i < out.size(); ++i) {
    REQUIRE(out[i] <= 0.5f);
    sum += out[i];
  }
  CHECK(sum / (out.size() - 1) / 0.5 == Approx(mean_factor).epsilon(5e-4));
}

TEST_CASE("weight modifier is deterministic: same seed same bits, 1 vs 2 threads") {
  const Tensor w = random_weights(19);
  const MT types[] = {MT::AddNormal, MT::Discretize, MT::PCMNoise, MT::ProgNoise, MT::DoReFa};
  for (MT t : types) for (bool last_column : {false, true}) {
    WeightModifierParameter p = modifier(t);
    p.copy_last_column = last_column;
    p.std_dev = 0.5f;
    p.res = 0.1f;
    p.sto_round = true;
    p.pdrop = 0.1f;
    p.pcm_t_inference = 100.0f;
    cpu::set_num_threads(1);
    const Tensor one = apply_weight_modifier(w, p, 42, 3, 1000, nullptr);
    cpu::set_num_threads(2);
    const Tensor two = apply_weight_modifier(w, p, 42, 3, 1000, nullptr);
    cpu::set_num_threads(0);
    const Tensor again = apply_weight_modifier(w, p, 42, 3, 1000, nullptr);
    const Tensor other = apply_weight_modifier(w, p, 42, 3, 2000, nullptr);
    CHECK(same_bits(one, two));
    CHECK(same_bits(one, again));
    CHECK_FALSE(same_bits(one, other));
  }
}

TEST_CASE("weight modifier validates its inputs") {
  WeightModifierParameter p = modifier(MT::AddNormal);
  p.std_dev = -1.0f;
  CHECK_THROWS_AS(apply_weight_modifier(mat({1, 2}, 1, 2), p, 0, 0, 0, nullptr), ConfigError);
  CHECK_THROWS_WITH(apply_weight_modifier(mat({1, 2}, 1, 2), p, 0, 0, 0, nullptr), Catch::Contains("std_dev"));
  p.std_dev = 0.1f;
  CHECK_THROWS_AS(apply_weight_modifier(Tensor::from_vector(std::vector<float>{1, 2}, Shape{2}), p, 0, 0, 0, nullptr),
                  ShapeError);
}

TEST_CASE("weight clip known answers") {
  WeightClipParameter p;
  p.type = WeightClipType::FixedValue;
  p.fixed_value = 0.5f;
  Tensor w = mat({-1.0f, 0.3f, 0.7f, -0.2f}, 2, 2);
  apply_weight_clip_(w, p);
  CHECK(w.to_vector() == std::vector<float>{-0.5f, 0.3f, 0.5f, -0.2f});

  // Unbiased std of -4..4 (no 0) is sqrt(60/7) = 2.92770.
  p = WeightClipParameter{};
  p.type = WeightClipType::LayerGaussian;
  p.sigma = 1.0f;
  w = mat({-4, -3, -2, -1, 1, 2, 3, 4}, 2, 4);
  apply_weight_clip_(w, p);
  std::vector<float> out = w.to_vector();
  CHECK(out[0] == Approx(-2.92770).epsilon(1e-5));
  CHECK(out[1] == Approx(-2.92770).epsilon(1e-5));
  CHECK(out[2] == -2.0f);
  CHECK(out[7] == Approx(2.92770).epsilon(1e-5));
  p.fixed_value = 2.0f;  // caps the gaussian clip value
  w = mat({-4, -3, -2, -1, 1, 2, 3, 4}, 2, 4);
  apply_weight_clip_(w, p);
  CHECK(w.to_vector() == std::vector<float>{-2, -2, -2, -1, 1, 2, 2, 2});

  p = WeightClipParameter{};
  p.type = WeightClipType::AverageChannelMax;  // row maxima 3 and 2 -> 2.5
  w = mat({1.0f, -3.0f, 0.5f, 2.0f}, 2, 2);
  apply_weight_clip_(w, p);
  CHECK(w.to_vector() == std::vector<float>{1.0f, -2.5f, 0.5f, 2.0f});

  p = WeightClipParameter{};
  p.type = WeightClipType::LayerGaussianPerChannel;
  p.sigma = 1.0f;
  w = mat({-4, -3, -2, -1, 1, 2, 3, 4, -0.4f, -0.3f, -0.2f, -0.1f, 0.1f, 0.2f, 0.3f, 0.4f}, 2, 8);
  apply_weight_clip_(w, p);
  out = w.to_vector();
  CHECK(out[0] == Approx(-2.92770).epsilon(1e-5));
  CHECK(out[2] == -2.0f);
  CHECK(out[8] == Approx(-0.292770).epsilon(1e-5));
  CHECK(out[10] == -0.2f);
  CHECK(out[15] == Approx(0.292770).epsilon(1e-5));

  p = WeightClipParameter{};  // NONE
  w = mat({-9.0f, 9.0f}, 1, 2);
  apply_weight_clip_(w, p);
  CHECK(w.to_vector() == std::vector<float>{-9.0f, 9.0f});

  // A non-contiguous view is clipped in place through its storage.
  p.type = WeightClipType::FixedValue;
  p.fixed_value = 1.0f;
  Tensor base = mat({-2.0f, 0.5f, 3.0f, -0.5f}, 2, 2);
  Tensor view = base.transpose(0, 1);
  apply_weight_clip_(view, p);
  CHECK(base.to_vector() == std::vector<float>{-1.0f, 0.5f, 1.0f, -0.5f});

  p.fixed_value = -1.0f;  // FIXED_VALUE needs fixed_value > 0
  CHECK_THROWS_AS(apply_weight_clip_(w, p), ConfigError);
}

TEST_CASE("weight remap known answers (weights and scales)") {
  WeightRemapParameter p;
  p.type = WeightRemapType::LayerwiseSymmetric;
  Tensor w = mat({1.0f, -2.0f, 0.5f, 4.0f}, 2, 2);
  Tensor s = Tensor::from_vector(std::vector<float>{1.0f, 2.0f}, Shape{2});
  apply_weight_remap_(w, s, p);
  CHECK(w.to_vector() == std::vector<float>{0.25f, -0.5f, 0.125f, 1.0f});
  CHECK(s.to_vector() == std::vector<float>{4.0f, 8.0f});

  p.remapped_wmax = 2.0f;  // m = 4/2
  w = mat({1.0f, -2.0f, 0.5f, 4.0f}, 2, 2);
  s = Tensor::from_vector(std::vector<float>{1.0f, 2.0f}, Shape{2});
  apply_weight_remap_(w, s, p);
  CHECK(w.to_vector() == std::vector<float>{0.5f, -1.0f, 0.25f, 2.0f});
  CHECK(s.to_vector() == std::vector<float>{2.0f, 4.0f});

  p = WeightRemapParameter{};
  p.type = WeightRemapType::ChannelwiseSymmetric;
  w = mat({1.0f, -2.0f, 0.5f, 4.0f, 0.0f, 0.0f}, 3, 2);
  s = Tensor::from_vector(std::vector<float>{1.0f, 2.0f, 3.0f}, Shape{3});
  apply_weight_remap_(w, s, p);
  CHECK(w.to_vector() == std::vector<float>{0.5f, -1.0f, 0.125f, 1.0f, 0.0f, 0.0f});
  CHECK(s.to_vector() == std::vector<float>{2.0f, 8.0f, 3.0f});  // a zero row keeps its scale

  // Bounded scale range 2 from min scale 1: new scales 2 and min(8, 2) = 2.
  p.max_scale_range = 2.0f;
  w = mat({1.0f, -2.0f, 0.5f, 8.0f}, 2, 2);
  s = Tensor::from_vector(std::vector<float>{1.0f, 1.0f}, Shape{2});
  apply_weight_remap_(w, s, p);
  CHECK(w.to_vector() == std::vector<float>{0.5f, -1.0f, 0.25f, 4.0f});
  CHECK(s.to_vector() == std::vector<float>{2.0f, 2.0f});

  p.remapped_wmax = 2.0f;  // not allowed with a scale range
  CHECK_THROWS_AS(apply_weight_remap_(w, s, p), ConfigError);
  p = WeightRemapParameter{};
  p.type = WeightRemapType::LayerwiseSymmetric;
  Tensor bad = Tensor::from_vector(std::vector<float>{1.0f, 1.0f, 1.0f}, Shape{3});
  CHECK_THROWS_AS(apply_weight_remap_(w, bad, p), ShapeError);
}
