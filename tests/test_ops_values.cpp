// Known-value tests for elementwise ops, activations, reductions, softmax,
// losses and matrix products (float32 and float64), their error messages,
// NaN propagation, and bitwise determinism across thread counts.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/cpu/parallel.h"

using namespace aimc;
using Catch::Matchers::Contains;

namespace {

Tensor f32(const std::vector<float>& v, const Shape& s) { return Tensor::from_vector(v, s); }
Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector(v, s); }

void check_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(want[i]).margin(tol));
  }
}

// Restores the thread limit when a test ends.
struct ThreadLimit {
  explicit ThreadLimit(int n) { cpu::set_num_threads(n); }
  ~ThreadLimit() { cpu::set_num_threads(0); }
};

}  // namespace

TEST_CASE("broadcast_shapes follows numpy rules") {
  CHECK(broadcast_shapes({3, 1}, {1, 4}) == Shape{3, 4});
  CHECK(broadcast_shapes({8, 5}, {5}) == Shape{8, 5});
  CHECK(broadcast_shapes({}, {2, 3}) == Shape{2, 3});
  CHECK(broadcast_shapes({2, 1, 3}, {4, 1}) == Shape{2, 4, 3});
  CHECK_THROWS_AS(broadcast_shapes({2, 3}, {4}), ShapeError);
}

TEST_CASE("binary ops broadcast with the right values") {
  Tensor a = f32({1, 2, 3}, {3, 1});
  Tensor b = f32({10, 20, 30, 40}, {1, 4});
  check_close(add(a, b).to_vector(), {11, 21, 31, 41, 12, 22, 32, 42, 13, 23, 33, 43}, 0);
  check_close(sub(a, b).to_vector(), {-9, -19, -29, -39, -8, -18, -28, -38, -7, -17, -27, -37}, 0);
  Tensor m = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor bias = f32({10, 20, 30}, {3});
  check_close(add(m, bias).to_vector(), {11, 22, 33, 14, 25, 36}, 0);
  check_close(mul(m, bias).to_vector(), {10, 40, 90, 40, 100, 180}, 0);
  check_close(div(m, Tensor::scalar(2.0)).to_vector(), {0.5, 1, 1.5, 2, 2.5, 3}, 0);
  // Transposed (non-contiguous) input.
  check_close(add(transpose(m, 0, 1), f32({100, 200}, {2})).to_vector(), {101, 204, 102, 205, 103, 206}, 0);
  CHECK(add(m, bias).shape() == Shape{2, 3});
}

TEST_CASE("large same-shape and bias-broadcast adds match a scalar loop") {
  Generator gen(7, 1);
  Tensor x = gen.normal({300, 257}, 0, 1);
  Tensor b = gen.normal({257}, 0, 1);
  const std::vector<float> xs = x.to_vector(), bs = b.to_vector();
  const std::vector<float> y = add(x, b).to_vector();
  const std::vector<float> z = mul(x, x).to_vector();
  bool all_equal = true;
  for (std::int64_t i = 0; i < 300; ++i)
    for (std::int64_t j = 0; j < 257; ++j) {
      all_equal &= y[i * 257 + j] == xs[i * 257 + j] + bs[j];
      all_equal &= z[i * 257 + j] == xs[i * 257 + j] * xs[i * 257 + j];
    }
  CHECK(all_equal);
}

TEST_CASE("broadcast errors name both shapes; dtype mismatches are ValueErrors") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4});
  CHECK_THROWS_AS(add(a, b), ShapeError);
  CHECK_THROWS_WITH(add(a, b), Contains("[2, 3]") && Contains("[4]"));
  CHECK_THROWS_WITH(mul(b, a), Contains("[2, 3]") && Contains("[4]"));
  CHECK_THROWS_AS(add(a, Tensor::zeros({2, 3}, DType::Float64)), ValueError);
  CHECK_THROWS_AS(matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})), ShapeError);
  CHECK_THROWS_WITH(matmul(Tensor::zeros({2, 3}), Tensor::zeros({2, 3})), Contains("[2, 3] x [2, 3]"));
  CHECK_THROWS_AS(matmul(Tensor::zeros({2, 3, 2}), Tensor::zeros({1, 3})), ShapeError);  // K 2 vs 1
  CHECK_THROWS_AS(matmul(Tensor::zeros({2, 3, 1}), Tensor::zeros({3, 1, 3})), ShapeError);  // batch 2 vs 3
  CHECK_THROWS_WITH(matmul(Tensor::zeros({2, 3, 1}), Tensor::zeros({3, 1, 3})), Contains("[2, 3, 1] x [3, 1, 3]"));
  CHECK_THROWS_AS(matmul(Tensor::zeros({3}), Tensor::zeros({2})), ShapeError);
  CHECK_THROWS_AS(matmul(Tensor::scalar(1.0), Tensor::zeros({2})), ShapeError);
  CHECK_THROWS_AS(linear(Tensor::zeros({2, 2, 3}), Tensor::zeros({4, 5}), Tensor()), ShapeError);
  CHECK_THROWS_AS(linear(Tensor::scalar(1.0), Tensor::zeros({4, 1}), Tensor()), ShapeError);
  CHECK_THROWS_AS(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 5}), Tensor()), ShapeError);
  CHECK_THROWS_AS(linear(Tensor::zeros({2, 3}), Tensor::zeros({4, 3}), Tensor::zeros({5})), ShapeError);
  CHECK_THROWS_AS(mse_loss(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})), ShapeError);
  CHECK_THROWS_AS(sum(Tensor::zeros({2, 3}), {0, -2}), ShapeError);
  CHECK_THROWS_AS(softmax(Tensor::zeros({2, 3}), 2), ShapeError);
}

TEST_CASE("unary ops and activations give known values") {
  Tensor x = f64({-2, -0.5, 0, 0.5, 2}, {5});
  auto v = [](const Tensor& t) { return t.to_double_vector(); };
  CHECK(v(relu(x)) == std::vector<double>{0, 0, 0, 0.5, 2});
  CHECK(v(leaky_relu(x, 0.1)) == std::vector<double>{-0.2, -0.05, 0, 0.5, 2});
  CHECK(v(abs(x)) == std::vector<double>{2, 0.5, 0, 0.5, 2});
  CHECK(v(neg(x)) == std::vector<double>{2, 0.5, -0, -0.5, -2});
  CHECK(v(square(x)) == std::vector<double>{4, 0.25, 0, 0.25, 4});
  CHECK(v(add_scalar(x, 1)) == std::vector<double>{-1, 0.5, 1, 1.5, 3});
  CHECK(v(mul_scalar(x, 2)) == std::vector<double>{-4, -1, 0, 1, 4});
  CHECK(sigmoid(Tensor::scalar(0.0)).item() == 0.5);
  CHECK(sigmoid(Tensor::scalar(2.0, DType::Float64)).item() == Approx(0.8807970779778823).epsilon(1e-15));
  CHECK(sigmoid(Tensor::scalar(-800.0, DType::Float64)).item() == 0.0);
  CHECK(sigmoid(Tensor::scalar(800.0, DType::Float64)).item() == 1.0);
  CHECK(tanh(Tensor::scalar(0.5, DType::Float64)).item() == Approx(0.46211715726000974).epsilon(1e-15));
  CHECK(gelu(Tensor::scalar(1.0)).item() == Approx(0.8413447).epsilon(1e-6));
  CHECK(gelu(Tensor::scalar(-1.0, DType::Float64)).item() == Approx(-0.15865525393145707).epsilon(1e-14));
  // erf(0.5) and erf(-2) to 16 digits (Abramowitz and Stegun's table).
  CHECK(erf(Tensor::scalar(0.5, DType::Float64)).item() == Approx(0.5204998778130465).epsilon(1e-14));
  CHECK(erf(Tensor::scalar(-2.0, DType::Float64)).item() == Approx(-0.9953222650189527).epsilon(1e-14));
  CHECK(exp(Tensor::scalar(1.0, DType::Float64)).item() == Approx(M_E).epsilon(1e-15));
  CHECK(log(Tensor::scalar(M_E, DType::Float64)).item() == Approx(1.0).epsilon(1e-15));
  CHECK(sqrt(Tensor::scalar(2.0)).item() == Approx(1.4142135).epsilon(1e-6));
  CHECK(pow_scalar(Tensor::scalar(2.0, DType::Float64), 3).item() == 8.0);
  CHECK(pow_scalar(Tensor::scalar(4.0, DType::Float64), -0.5).item() == 0.5);
}

TEST_CASE("sum and mean reduce the right axes") {
  Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(sum(x).item() == 21);
  CHECK(sum(x).dim() == 0);
  CHECK(mean(x).item() == 3.5);
  CHECK(sum(x, {0}).to_vector() == std::vector<float>{5, 7, 9});
  CHECK(sum(x, {1}).to_vector() == std::vector<float>{6, 15});
  CHECK(sum(x, {-1}, true).shape() == Shape{2, 1});
  CHECK(sum(x, {0}, true).shape() == Shape{1, 3});
  CHECK(mean(x, {0}).to_vector() == std::vector<float>{2.5, 3.5, 4.5});
  Tensor y = Tensor::ones({2, 3, 4});
  Tensor s = sum(y, {0, 2});
  CHECK(s.shape() == Shape{3});
  CHECK(s.to_vector() == std::vector<float>{8, 8, 8});
  CHECK(sum(y, {0, 2}, true).shape() == Shape{1, 3, 1});
  // float32 sums accumulate in double: 2^24 + many ones are not lost.
  Tensor big = Tensor::ones({1 << 20});
  CHECK(sum(big).item() == double(1 << 20));
  Tensor third = Tensor::full({3000000}, 0.1, DType::Float32);
  CHECK(sum(third).item() == Approx(3000000 * double(0.1f)).epsilon(1e-7));
  // Large column and row sums (chunked paths) against double loops.
  Generator gen(5, 2);
  const std::int64_t rows = 5000, cols = 20;
  Tensor tall = gen.normal({rows, cols}, 0, 1);
  const std::vector<float> tv = tall.to_vector();
  const std::vector<float> col_sums = sum(tall, {0}).to_vector();
  const std::vector<float> row_sums = sum(transpose(tall, 0, 1), {0}).to_vector();
  double worst = 0;
  for (std::int64_t j = 0; j < cols; ++j) {
    double ref = 0;
    for (std::int64_t i = 0; i < rows; ++i) ref += tv[i * cols + j];
    worst = std::max(worst, std::abs(col_sums[j] - ref));
  }
  for (std::int64_t i = 0; i < rows; ++i) {
    double ref = 0;
    for (std::int64_t j = 0; j < cols; ++j) ref += tv[i * cols + j];
    worst = std::max(worst, std::abs(row_sums[i] - ref));
  }
  CHECK(worst < 1e-4);
}

TEST_CASE("softmax and log_softmax values") {
  Tensor x = f64({1, 2, 3}, {3});
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const std::vector<double> ls = log_softmax(x).to_double_vector();
  CHECK(ls[0] == Approx(1 - lse).epsilon(1e-14));
  CHECK(ls[1] == Approx(2 - lse).epsilon(1e-14));
  CHECK(ls[2] == Approx(3 - lse).epsilon(1e-14));
  CHECK(ls[2] == Approx(-0.40760596444438013).epsilon(1e-14));
  // Rows sum to one, also for huge logits (stability) and along dim 0.
  Generator gen(3, 0);
  Tensor r = mul_scalar(gen.normal({7, 11}, 0, 1), 50.0);
  Tensor p = softmax(r, 1);
  const std::vector<float> rs = sum(p, {1}).to_vector();
  for (float v : rs) CHECK(v == Approx(1.0).margin(1e-6));
  const std::vector<float> cs = sum(softmax(r, 0), {0}).to_vector();
  for (float v : cs) CHECK(v == Approx(1.0).margin(1e-6));
  Tensor huge = f32({1000, 1001, 1002}, {1, 3});
  const std::vector<float> hp = softmax(huge).to_vector();
  CHECK(hp[2] == Approx(std::exp(3 - lse)).epsilon(1e-6));
  const std::vector<float> hl = log_softmax(huge).to_vector();
  CHECK(hl[0] == Approx(1 - lse).epsilon(1e-5));
  // log_softmax == log(softmax) in a middle dim.
  Tensor z = gen.normal({2, 5, 3}, 0, 1, DType::Float64);
  const std::vector<double> a = log_softmax(z, 1).to_double_vector();
  const std::vector<double> b = log(softmax(z, 1)).to_double_vector();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).epsilon(1e-12));
}

TEST_CASE("cross_entropy matches a hand computation and rejects bad labels") {
  Tensor logits = f64({1, 2, 3, 0, 0, 0}, {2, 3});
  Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{2, 0}, {2});
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double want = ((lse0 - 3.0) + std::log(3.0)) / 2.0;  // 0.7531...
  CHECK(cross_entropy(logits, labels).item() == Approx(want).epsilon(1e-14));
  CHECK(want == Approx(0.753109126556245).epsilon(1e-12));
  CHECK(cross_entropy(logits.to(DType::Float32), labels).item() == Approx(want).epsilon(1e-6));
  // Gradient (softmax - onehot) / N.
  Tensor l = logits.clone();
  l.set_requires_grad();
  cross_entropy(l, labels).backward();
  const std::vector<double> g = l.grad().to_double_vector();
  CHECK(g[2] == Approx((std::exp(3 - lse0) - 1) / 2).epsilon(1e-14));
  CHECK(g[3] == Approx((1.0 / 3 - 1) / 2).epsilon(1e-14));
  CHECK(g[4] == Approx(1.0 / 6).epsilon(1e-14));
  // Stable for huge logits.
  Tensor huge = f32({1000, 0, -1000}, {1, 3});
  CHECK(cross_entropy(huge, Tensor::from_vector(std::vector<std::int32_t>{0}, {1})).item() == Approx(0).margin(1e-6));
  CHECK(cross_entropy(huge, Tensor::from_vector(std::vector<std::int32_t>{1}, {1})).item() == Approx(1000).epsilon(1e-6));
  // Bad labels.
  Tensor bad = Tensor::from_vector(std::vector<std::int32_t>{0, 3}, {2});
  CHECK_THROWS_AS(cross_entropy(logits, bad), ValueError);
  CHECK_THROWS_WITH(cross_entropy(logits, bad), Contains("label 3") && Contains("[0, 3)"));
  CHECK_THROWS_AS(cross_entropy(logits, Tensor::from_vector(std::vector<std::int32_t>{-1, 0}, {2})), ValueError);
  CHECK_THROWS_AS(cross_entropy(logits, Tensor::from_vector(std::vector<std::int32_t>{0, 0, 0}, {3})), ShapeError);
  CHECK_THROWS_AS(cross_entropy(logits, Tensor::zeros({2})), ValueError);  // float labels
}

TEST_CASE("mse_loss and argmax_rows values") {
  Tensor p = f32({1, 2, 3, 4}, {2, 2}), t = f32({1, 0, 0, 0}, {2, 2});
  CHECK(mse_loss(p, t).item() == Approx((0 + 4 + 9 + 16) / 4.0));
  Tensor x = f32({0.1f, 0.9f, 0.3f, 5, -1, 5, 2, 2, 7}, {3, 3});
  CHECK(argmax_rows(x) == std::vector<std::int32_t>{1, 0, 2});
}

TEST_CASE("matmul and linear of small known matrices") {
  Tensor a = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = f32({7, 8, 9, 10, 11, 12}, {3, 2});
  CHECK(matmul(a, b).to_vector() == std::vector<float>{58, 64, 139, 154});
  // Transposed operands go in without copies and give the same numbers.
  Tensor bt = f32({7, 9, 11, 8, 10, 12}, {2, 3});
  CHECK(matmul(a, transpose(bt, 0, 1)).to_vector() == std::vector<float>{58, 64, 139, 154});
  CHECK(matmul(transpose(b, 0, 1), transpose(a, 0, 1)).to_vector() == std::vector<float>{58, 139, 64, 154});
  // linear: x Wᵀ + b, weight [out, in].
  Tensor w = f64({1, 0, -1, 2, 1, 0}, {2, 3});
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor bias = f64({0.5, -1}, {2});
  CHECK(linear(x, w, bias).to_double_vector() == std::vector<double>{-1.5, 3, -1.5, 12});
  CHECK(linear(x, w, Tensor()).to_double_vector() == std::vector<double>{-2, 4, -2, 13});
}

TEST_CASE("batched matmul and N-D linear equal the 2-D products entry by entry") {
  Generator gen(91, 2);
  const Tensor a = gen.normal({2, 3, 4, 5}), b = gen.normal({3, 5, 6}), w = gen.normal({6, 5}), bias = gen.normal({6});
  const Tensor y = matmul(a, b);  // [2, 3] x [3] batches broadcast to [2, 3]
  REQUIRE(y.shape() == Shape{2, 3, 4, 6});
  const Tensor l = linear(a, w, bias);
  REQUIRE(l.shape() == Shape{2, 3, 4, 6});
  for (std::int64_t i = 0; i < 2; ++i)
    for (std::int64_t j = 0; j < 3; ++j) {
      const Tensor ai = reshape(slice(slice(a, 0, i, i + 1), 1, j, j + 1), {4, 5});
      const Tensor bj = reshape(slice(b, 0, j, j + 1), {5, 6});
      const Tensor yij = reshape(slice(slice(y, 0, i, i + 1), 1, j, j + 1), {4, 6});
      const Tensor lij = reshape(slice(slice(l, 0, i, i + 1), 1, j, j + 1), {4, 6});
      CHECK(yij.to_vector() == matmul(ai, bj).to_vector());
      // The rows of the flattened product bit for bit; the per-batch product
      // runs the GEMM with another M (its row blocking can order the float
      // sums differently): within 1e-5 (|x| < 8, K = 5, float eps 6e-8).
      const Tensor flat = reshape(slice(linear(reshape(a, {24, 5}), w, bias), 0, 4 * (3 * i + j), 4 * (3 * i + j) + 4), {4, 6});
      CHECK(lij.to_vector() == flat.to_vector());
      const std::vector<float> per_batch = linear(ai, w, bias).to_vector(), got = lij.to_vector();
      for (std::size_t k = 0; k < got.size(); ++k) CHECK(got[k] == Approx(per_batch[k]).margin(1e-5));
    }
  // A shared 2-D right operand (a projection) runs as one GEMM over all rows:
  // matmul with Wᵀ is linear with W, bit for bit (the same GEMM).
  CHECK(matmul(a, transpose(w, 0, 1)).to_vector() == linear(a, w, Tensor()).to_vector());
  CHECK(matmul(a, transpose(w, 0, 1)).shape() == Shape{2, 3, 4, 6});
  // Vectors as numpy: [K] x [K] is a scalar, [K] x [K, N] a [N] row, [M, K] x [K] a [M] column.
  const Tensor u = f32({1, 2, 3}, {3}), v = f32({4, 5, 6}, {3});
  const Tensor m = f32({1, 0, 0, 1, 2, 0}, {3, 2});  // rows [1, 0], [0, 1], [2, 0]
  CHECK(matmul(u, v).shape() == Shape{});
  CHECK(matmul(u, v).item() == 32.0);
  CHECK(matmul(u, m).to_vector() == std::vector<float>{7, 2});
  CHECK(matmul(transpose(m, 0, 1), u).to_vector() == std::vector<float>{7, 2});
  CHECK(linear(u, transpose(m, 0, 1), Tensor()).to_vector() == std::vector<float>{7, 2});
}

TEST_CASE("linear matches a naive triple loop on random 37x53 inputs") {
  const std::int64_t n = 37, in = 53, out = 29;
  Generator gen(2024, 1);
  Tensor x = gen.normal({n, in}, 0, 1), w = gen.normal({out, in}, 0, 0.3), b = gen.normal({out}, 0, 1);
  const std::vector<float> xs = x.to_vector(), ws = w.to_vector(), bs = b.to_vector();
  const std::vector<float> y = linear(x, w, b).to_vector();
  double worst = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < out; ++j) {
      double ref = bs[j], scale = std::abs(bs[j]);
      for (std::int64_t k = 0; k < in; ++k) {
        ref += double(xs[i * in + k]) * double(ws[j * in + k]);
        scale += std::abs(double(xs[i * in + k]) * double(ws[j * in + k]));
      }
      worst = std::max(worst, std::abs(y[i * out + j] - ref) / scale);
    }
  CHECK(worst < 1e-5);
  // Backward against the same naive sums.
  Tensor xr = x.clone(), wr = w.clone(), br = b.clone();
  xr.set_requires_grad();
  wr.set_requires_grad();
  br.set_requires_grad();
  Tensor gy = gen.normal({n, out}, 0, 1);
  linear(xr, wr, br).backward(gy);
  const std::vector<float> gs = gy.to_vector(), dx = xr.grad().to_vector(), dw = wr.grad().to_vector(),
                           db = br.grad().to_vector();
  double worst_grad = 0;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t k = 0; k < in; ++k) {
      double ref = 0, scale = 0;
      for (std::int64_t j = 0; j < out; ++j) {
        ref += double(gs[i * out + j]) * ws[j * in + k];
        scale += std::abs(double(gs[i * out + j]) * ws[j * in + k]);
      }
      worst_grad = std::max(worst_grad, std::abs(dx[i * in + k] - ref) / scale);
    }
  for (std::int64_t j = 0; j < out; ++j) {
    double ref_b = 0, scale_b = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      ref_b += gs[i * out + j];
      scale_b += std::abs(gs[i * out + j]);
    }
    worst_grad = std::max(worst_grad, std::abs(db[j] - ref_b) / scale_b);
    for (std::int64_t k = 0; k < in; ++k) {
      double ref = 0, scale = 0;
      for (std::int64_t i = 0; i < n; ++i) {
        ref += double(gs[i * out + j]) * xs[i * in + k];
        scale += std::abs(double(gs[i * out + j]) * xs[i * in + k]);
      }
      worst_grad = std::max(worst_grad, std::abs(dw[j * in + k] - ref) / scale);
    }
  }
  CHECK(worst_grad < 1e-5);
}

TEST_CASE("NaN passes through elementwise ops, activations and softmax") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = f64({nan, 1.0}, {1, 2});
  for (const Tensor& y : {add(x, x), mul_scalar(x, 2), exp(x), relu(x), leaky_relu(x), sigmoid(x), tanh(x),
                          gelu(x), abs(x), softmax(x), sum(x, {1})}) {
    CHECK(std::isnan(y.to_double_vector()[0]));
  }
  CHECK(std::isnan(sum(x).item()));
  CHECK(std::isnan(mse_loss(x, Tensor::zeros({1, 2}, DType::Float64)).item()));
  CHECK(argmax_rows(x) == std::vector<std::int32_t>{0});
}

TEST_CASE("results are bitwise identical for 1, 2 and 8 threads") {
  Generator gen(99, 0);
  Tensor x = gen.normal({513, 300}, 0, 1), w = gen.normal({70, 300}, 0, 1), b = gen.normal({70}, 0, 1);
  Tensor labels = Tensor::from_vector(std::vector<std::int32_t>(513, 3), {513});
  auto run = [&]() {
    Tensor xr = x.clone(), wr = w.clone(), br = b.clone();
    xr.set_requires_grad();
    wr.set_requires_grad();
    br.set_requires_grad();
    Tensor loss = cross_entropy(softmax(gelu(linear(xr, wr, br)), 0), labels);
    loss.backward();
    std::vector<float> all = {static_cast<float>(loss.item()), static_cast<float>(sum(x).item())};
    for (const Tensor& t : {xr.grad(), wr.grad(), br.grad(), sum(x, {0}), sum(x, {1}), mean(x, {0}, true)}) {
      const std::vector<float> v = t.to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    return all;
  };
  std::vector<float> one, two, eight;
  {
    ThreadLimit limit(1);
    one = run();
  }
  {
    ThreadLimit limit(2);
    two = run();
  }
  {
    ThreadLimit limit(8);
    eight = run();
  }
  CHECK(one == two);
  CHECK(one == eight);
}

TEST_CASE("no graph is recorded under NoGradGuard or for inputs without grad") {
  Tensor a = Tensor::ones({2, 2});
  a.set_requires_grad();
  {
    NoGradGuard guard;
    CHECK_FALSE(add(a, a).requires_grad());
    CHECK_FALSE(linear(a, a, Tensor()).requires_grad());
  }
  CHECK(mul(a, a).requires_grad());
  CHECK_FALSE(mul(Tensor::ones({2}), Tensor::ones({2})).requires_grad());
}
