// Pooling, batch norm and dropout: known answers, float64 gradient checks,
// running-statistics updates against hand computation and dropout mask
// statistics.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "engine/generator.h"
#include "engine/grad_check.h"
#include "engine/ops.h"
#include "kernels/cpu/parallel.h"

using namespace aimc;

namespace {

Tensor random_tensor(const Shape& shape, std::uint64_t seed, DType dtype, double low = -1, double high = 1) {
  Generator gen(seed);
  return gen.uniform(shape, low, high, dtype);
}

void require_grad_ok(const GradCheckResult& r) {
  INFO(r.message);
  INFO("max abs error " << r.max_abs_error);
  REQUIRE(r.ok);
}

}  // namespace

TEST_CASE("2x2 max pool of a known 4x4 input") {
  const Tensor x = Tensor::from_vector(
      std::vector<float>{1, 5, 2, 0, 3, 4, 8, 7, -1, -2, 6, 6, -3, -4, 9, 1}, {1, 1, 4, 4}).set_requires_grad();
  const Tensor y = max_pool(x, {2, 2}, {2, 2}, {0, 0});
  CHECK(y.shape() == Shape{1, 1, 2, 2});
  CHECK(y.to_vector() == std::vector<float>{5, 8, -1, 9});
  y.backward(Tensor::from_vector(std::vector<float>{10, 20, 30, 40}, {1, 1, 2, 2}));
  CHECK(x.grad().to_vector() == std::vector<float>{0, 10, 0, 0, 0, 0, 20, 0, 30, 0, 0, 0, 0, 0, 40, 0});
  // Empty stride means stride = kernel.
  CHECK(max_pool(x, {2, 2}, {}, {}).to_vector() == std::vector<float>{5, 8, -1, 9});
}

TEST_CASE("max pool treats padding as -inf and avg pool counts it (count_include_pad)") {
  const Tensor x = Tensor::from_vector(std::vector<float>{-1, -2, -3, -4}, {1, 1, 2, 2});
  // Padding 1, kernel 2, stride 2: each window holds exactly one real value.
  CHECK(max_pool(x, {2, 2}, {2, 2}, {1, 1}).to_vector() == std::vector<float>{-1, -2, -3, -4});
  CHECK(avg_pool(x, {2, 2}, {2, 2}, {1, 1}).to_vector() == std::vector<float>{-0.25f, -0.5f, -0.75f, -1.f});
  const Tensor ones = Tensor::ones({1, 1, 3});
  CHECK(avg_pool(ones, {3}, {1}, {1}).to_vector() == std::vector<float>{2.f / 3, 1.f, 2.f / 3});
  const Tensor x1 = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {1, 1, 6});
  CHECK(avg_pool(x1, {2}, {2}, {0}).to_vector() == std::vector<float>{1.5f, 3.5f, 5.5f});
}

TEST_CASE("max pool: -inf windows point inside themselves, NaN propagates") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = Tensor::full({1, 1, 2, 4}, -inf).set_requires_grad();
  // Padding 1: windows (1x2 real elements each) of -inf only.
  const Tensor y = max_pool(x, {2, 2}, {2, 2}, {1, 0});
  CHECK(y.to_vector() == std::vector<float>{-inf, -inf, -inf, -inf});
  y.backward(Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {1, 1, 2, 2}));
  // Each window's gradient goes to its first real element.
  CHECK(x.grad().to_vector() == std::vector<float>{1, 0, 2, 0, 3, 0, 4, 0});
  const Tensor xn = Tensor::from_vector(std::vector<float>{1, nan, 5, 2, 3, 4, 0, 1}, {1, 1, 2, 4});
  const std::vector<float> yn = max_pool(xn, {2, 2}, {2, 2}, {0, 0}).to_vector();
  CHECK(std::isnan(yn[0]));
  CHECK(yn[1] == 5.f);
}

TEST_CASE("pooling and batch_norm bits do not depend on the thread count") {
  const Tensor x = random_tensor({8, 6, 13, 17}, 600, DType::Float32);
  const Tensor g = random_tensor({8, 6, 7, 9}, 601, DType::Float32);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 8}) {
    cpu::set_num_threads(threads);
    Tensor xi = x.clone().set_requires_grad();
    const Tensor m = max_pool(xi, {3, 3}, {2, 2}, {1, 1});
    const Tensor a = avg_pool(xi, {3, 3}, {2, 2}, {1, 1});
    Tensor rm = Tensor::zeros({6}), rv = Tensor::ones({6});
    const Tensor bn = batch_norm(xi, Tensor(), Tensor(), rm, rv, true);
    (sum(m * g) + sum(a * g) + sum(bn * x)).backward();
    std::vector<float> all = m.to_vector();
    for (const Tensor& t : {a, bn, xi.grad(), rm, rv}) {
      const std::vector<float> v = t.to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    results.push_back(all);
  }
  cpu::set_num_threads(0);
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
}

TEST_CASE("pooling rejects bad geometry") {
  const Tensor x = Tensor::zeros({1, 1, 4, 4});
  CHECK_THROWS_AS(max_pool(x, {2}, {2}, {0}), ShapeError);
  CHECK_THROWS_AS(max_pool(x, {2, 2}, {0, 0}, {0, 0}), ConfigError);
  CHECK_THROWS_AS(max_pool(x, {3, 3}, {1, 1}, {2, 2}), ConfigError);  // padding > kernel/2
  CHECK_THROWS_AS(avg_pool(x, {5, 5}, {1, 1}, {0, 0}), ShapeError);
  CHECK_THROWS_AS(global_avg_pool(Tensor::zeros({2, 3})), ShapeError);
}

TEST_CASE("gradient checks of max_pool and avg_pool in 1-D, 2-D and 3-D") {
  struct Case {
    Shape x_shape;
    std::vector<std::int64_t> kernel, stride, padding;
  };
  const std::vector<Case> cases = {
      {{2, 2, 9}, {3}, {2}, {1}},
      {{2, 2, 5, 6}, {2, 3}, {2, 1}, {1, 1}},
      {{1, 2, 4, 5, 4}, {2, 2, 3}, {1, 2, 2}, {0, 1, 1}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Case& c = cases[i];
    Tensor x = random_tensor(c.x_shape, 200 + i, DType::Float64).set_requires_grad();
    require_grad_ok(grad_check(
        [&](const std::vector<Tensor>& in) { return max_pool(in[0], c.kernel, c.stride, c.padding); }, {x}));
    require_grad_ok(grad_check(
        [&](const std::vector<Tensor>& in) { return avg_pool(in[0], c.kernel, c.stride, c.padding); }, {x}));
  }
}

TEST_CASE("global_avg_pool averages each plane") {
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 10, 20, 30, 40}, {1, 2, 2, 2});
  const Tensor y = global_avg_pool(x);
  CHECK(y.shape() == Shape{1, 2});
  CHECK(y.to_vector() == std::vector<float>{2.5f, 25.f});
  Tensor x3 = random_tensor({2, 3, 2, 3, 2}, 210, DType::Float64).set_requires_grad();
  require_grad_ok(grad_check([](const std::vector<Tensor>& in) { return global_avg_pool(in[0]); }, {x3}));
  Tensor x1 = random_tensor({2, 3, 5}, 211, DType::Float64).set_requires_grad();
  require_grad_ok(grad_check([](const std::vector<Tensor>& in) { return global_avg_pool(in[0]); }, {x1}));
}

TEST_CASE("batch_norm training: output statistics and running stats after one step") {
  // x [N=4, C=2]: channel 0 = 1,2,3,6; channel 1 = -1,0,1,4.
  const Tensor x = Tensor::from_vector(std::vector<double>{1, -1, 2, 0, 3, 1, 6, 4}, {4, 2});
  Tensor running_mean = Tensor::from_vector(std::vector<double>{0.5, -0.5}, {2});
  Tensor running_var = Tensor::from_vector(std::vector<double>{2.0, 1.0}, {2});
  const Tensor y = batch_norm(x, Tensor(), Tensor(), running_mean, running_var, true, 0.1, 1e-5);
  // Channel 0: mean 3, biased var (4+1+0+9)/4 = 3.5, unbiased 14/3.
  // Channel 1: mean 1, same deviations.
  const std::vector<double> rm = running_mean.to_double_vector(), rv = running_var.to_double_vector();
  CHECK(rm[0] == Approx(0.9 * 0.5 + 0.1 * 3.0).epsilon(1e-12));
  CHECK(rm[1] == Approx(0.9 * -0.5 + 0.1 * 1.0).epsilon(1e-12));
  CHECK(rv[0] == Approx(0.9 * 2.0 + 0.1 * 14.0 / 3.0).epsilon(1e-12));
  CHECK(rv[1] == Approx(0.9 * 1.0 + 0.1 * 14.0 / 3.0).epsilon(1e-12));
  const std::vector<double> yv = y.to_double_vector();
  const double inv = 1 / std::sqrt(3.5 + 1e-5);
  CHECK(yv[0] == Approx((1 - 3) * inv).epsilon(1e-12));
  CHECK(yv[6] == Approx((6 - 3) * inv).epsilon(1e-12));
  CHECK(yv[1] == Approx((-1 - 1) * inv).epsilon(1e-12));

  // [N, C, H, W] with weight and bias in float32: per-channel mean b, std w.
  const Tensor x4 = random_tensor({8, 3, 5, 5}, 300, DType::Float32, -2, 5);
  const Tensor w = Tensor::from_vector(std::vector<float>{1.f, 2.f, 0.5f}, {3});
  const Tensor b = Tensor::from_vector(std::vector<float>{0.f, -1.f, 3.f}, {3});
  Tensor rm4 = Tensor::zeros({3}), rv4 = Tensor::ones({3});
  const std::vector<float> y4 = batch_norm(x4, w, b, rm4, rv4, true).to_vector();
  for (int c = 0; c < 3; ++c) {
    double s = 0, s2 = 0;
    for (int n = 0; n < 8; ++n)
      for (int k = 0; k < 25; ++k) {
        const double v = y4[static_cast<std::size_t>((n * 3 + c) * 25 + k)];
        s += v;
        s2 += v * v;
      }
    const double mean = s / 200, var = s2 / 200 - mean * mean;
    CHECK(mean == Approx(b.to_vector()[c]).margin(1e-5));
    CHECK(std::sqrt(var) == Approx(w.to_vector()[c]).epsilon(1e-4));
  }
}

TEST_CASE("batch_norm eval uses the running statistics") {
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2});
  Tensor rm = Tensor::from_vector(std::vector<double>{1, -1}, {2});
  Tensor rv = Tensor::from_vector(std::vector<double>{4, 0.25}, {2});
  const Tensor w = Tensor::from_vector(std::vector<double>{2, 1}, {2});
  const Tensor b = Tensor::from_vector(std::vector<double>{0, 1}, {2});
  const std::vector<double> y = batch_norm(x, w, b, rm, rv, false, 0.1, 0).to_double_vector();
  CHECK(y == std::vector<double>{0, 7, 2, 11});
  CHECK(rm.to_double_vector() == std::vector<double>{1, -1});  // untouched in eval
  CHECK_THROWS_AS(batch_norm(x, w, b, Tensor(), Tensor(), false), ConfigError);
  CHECK_THROWS_AS(batch_norm(x, Tensor::ones({3}, DType::Float64), b, rm, rv, false), ShapeError);
  CHECK_THROWS_AS(batch_norm(Tensor::ones({1, 2}, DType::Float64), w, b, rm, rv, true), ShapeError);
}

TEST_CASE("gradient checks of batch_norm in training and eval mode") {
  for (const Shape& shape : {Shape{5, 3}, Shape{3, 2, 4}, Shape{2, 3, 3, 2}}) {
    INFO("shape " << shape_str(shape));
    const std::int64_t c = shape[1];
    Tensor x = random_tensor(shape, 400, DType::Float64, -2, 2).set_requires_grad();
    Tensor w = random_tensor({c}, 401, DType::Float64, 0.5, 1.5).set_requires_grad();
    Tensor b = random_tensor({c}, 402, DType::Float64).set_requires_grad();
    require_grad_ok(grad_check(
        [](const std::vector<Tensor>& in) {
          return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true, 0.1, 1e-5);
        },
        {x, w, b}));
    // Without weight and bias.
    require_grad_ok(grad_check(
        [](const std::vector<Tensor>& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
        {x}));
    const Tensor rm = random_tensor({c}, 403, DType::Float64);
    const Tensor rv = random_tensor({c}, 404, DType::Float64, 0.5, 2);
    require_grad_ok(grad_check(
        [&](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5); },
        {x, w, b}));
  }
}

TEST_CASE("dropout keeps 1-p of the values, scales them by 1/(1-p), and is seeded") {
  const std::int64_t n = 1000000;
  const double p = 0.3;
  const Tensor x = random_tensor({n}, 500, DType::Float32, 0.5, 1.5);  // never 0
  Generator gen(42);
  const std::vector<float> y = dropout(x, p, true, gen).to_vector();
  const std::vector<float> xv = x.to_vector();
  std::int64_t kept = 0;
  bool scaled_ok = true;
  for (std::int64_t i = 0; i < n; ++i) {
    if (y[i] != 0.f) {
      ++kept;
      scaled_ok = scaled_ok && y[i] == xv[i] / static_cast<float>(1 - p);
    }
  }
  const double fraction = static_cast<double>(kept) / n;
  const double sigma = std::sqrt(p * (1 - p) / n);
  CHECK(std::abs(fraction - 0.7) <= 5 * sigma);
  CHECK(scaled_ok);
  Generator same(42), other(43);
  CHECK(dropout(x, p, true, same).to_vector() == y);
  CHECK(dropout(x, p, true, other).to_vector() != y);
}

TEST_CASE("dropout is the identity in eval or with p = 0 and rejects p outside [0, 1)") {
  const Tensor x = random_tensor({100}, 501, DType::Float32);
  Generator gen(1);
  CHECK(dropout(x, 0.5, false, gen).to_vector() == x.to_vector());
  CHECK(dropout(x, 0.0, true, gen).to_vector() == x.to_vector());
  CHECK(gen.offset() == 0);  // no random numbers drawn
  CHECK_THROWS_AS(dropout(x, 1.0, true, gen), ConfigError);
  CHECK_THROWS_AS(dropout(x, -0.1, true, gen), ConfigError);
  CHECK_THROWS_AS(dropout(x, 1.5, false, gen), ConfigError);
}

TEST_CASE("gradient check of dropout with a fixed mask") {
  Tensor x = random_tensor({4, 5}, 502, DType::Float64).set_requires_grad();
  require_grad_ok(grad_check(
      [](const std::vector<Tensor>& in) {
        Generator gen(77);  // same mask on every call
        return dropout(in[0], 0.4, true, gen);
      },
      {x}));
  // Gradient is mask / (1 - p): zero exactly where the output is zero.
  Generator gen(77);
  Tensor x2 = x.detach().clone().set_requires_grad();
  const Tensor y = dropout(x2, 0.4, true, gen);
  y.backward(Tensor::ones({4, 5}, DType::Float64));
  const std::vector<double> yv = y.to_double_vector(), gv = x2.grad().to_double_vector();
  for (std::size_t i = 0; i < yv.size(); ++i) CHECK(gv[i] == (yv[i] == 0 ? 0.0 : 1 / (1 - 0.4)));
}
