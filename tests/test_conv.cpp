// Convolution ops: conv_output_size, im2col / col2im layout and gradients,
// conv against a naive direct convolution (1-D, 2-D, 3-D, stride, padding,
// dilation, groups incl. depthwise), gradient checks in float64, and
// thread-count independence of the results.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
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

ConvGeometry geometry(std::vector<std::int64_t> kernel, std::vector<std::int64_t> stride,
                      std::vector<std::int64_t> padding, std::vector<std::int64_t> dilation, std::int64_t groups = 1) {
  ConvGeometry g;
  g.kernel = std::move(kernel);
  g.stride = std::move(stride);
  g.padding = std::move(padding);
  g.dilation = std::move(dilation);
  g.groups = groups;
  return g;
}

// Direct convolution in double, written independently of the library: every
// problem is treated as 3-D with leading unit spatial dims.
std::vector<double> naive_conv(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& g,
                               Shape& out_shape) {
  const int dims = static_cast<int>(x.dim()) - 2, shift = 3 - dims;
  const std::vector<double> xv = x.to_double_vector(), wv = w.to_double_vector();
  const std::vector<double> bv = b.defined() ? b.to_double_vector() : std::vector<double>(w.size(0), 0.0);
  std::int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, p[3] = {0, 0, 0}, d[3] = {1, 1, 1};
  std::int64_t out[3] = {1, 1, 1};
  for (int i = 0; i < dims; ++i) {
    in[i + shift] = x.size(2 + i);
    k[i + shift] = g.kernel[i];
    s[i + shift] = g.stride[i];
    p[i + shift] = g.padding[i];
    d[i + shift] = g.dilation[i];
    out[i + shift] = (in[i + shift] + 2 * p[i + shift] - d[i + shift] * (k[i + shift] - 1) - 1) / s[i + shift] + 1;
  }
  const std::int64_t n = x.size(0), cin = x.size(1), cout = w.size(0), groups = g.groups;
  const std::int64_t cg = cin / groups, og = cout / groups;
  out_shape = {n, cout};
  for (int i = 0; i < dims; ++i) out_shape.push_back(out[i + shift]);
  std::vector<double> y;
  for (std::int64_t b0 = 0; b0 < n; ++b0)
    for (std::int64_t co = 0; co < cout; ++co)
      for (std::int64_t o0 = 0; o0 < out[0]; ++o0)
        for (std::int64_t o1 = 0; o1 < out[1]; ++o1)
          for (std::int64_t o2 = 0; o2 < out[2]; ++o2) {
            double acc = bv[co];
            const std::int64_t group = co / og;
            for (std::int64_t ci = 0; ci < cg; ++ci)
              for (std::int64_t a = 0; a < k[0]; ++a)
                for (std::int64_t bb = 0; bb < k[1]; ++bb)
                  for (std::int64_t c = 0; c < k[2]; ++c) {
                    const std::int64_t i0 = o0 * s[0] - p[0] + a * d[0];
                    const std::int64_t i1 = o1 * s[1] - p[1] + bb * d[1];
                    const std::int64_t i2 = o2 * s[2] - p[2] + c * d[2];
                    if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2]) continue;
                    const std::int64_t xi =
                        (((b0 * cin + group * cg + ci) * in[0] + i0) * in[1] + i1) * in[2] + i2;
                    const std::int64_t wi = (((co * cg + ci) * k[0] + a) * k[1] + bb) * k[2] + c;
                    acc += xv[xi] * wv[wi];
                  }
            y.push_back(acc);
          }
  return y;
}

// conv in float32 against the naive loop; returns the largest |difference|.
double conv_error_vs_naive(const Shape& x_shape, std::int64_t cout, const ConvGeometry& g, bool with_bias,
                           std::uint64_t seed) {
  Shape w_shape{cout, x_shape[1] / g.groups};
  w_shape.insert(w_shape.end(), g.kernel.begin(), g.kernel.end());
  const Tensor x = random_tensor(x_shape, seed, DType::Float32);
  const double fan_in = static_cast<double>(shape_numel(w_shape) / cout);
  const Tensor w = random_tensor(w_shape, seed + 1, DType::Float32, -1 / std::sqrt(fan_in), 1 / std::sqrt(fan_in));
  const Tensor b = with_bias ? random_tensor({cout}, seed + 2, DType::Float32) : Tensor();
  const Tensor y = conv(x, w, b, g);
  Shape expected_shape;
  const std::vector<double> ref = naive_conv(x, w, b, g, expected_shape);
  REQUIRE(y.shape() == expected_shape);
  const std::vector<double> got = y.to_double_vector();
  double err = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) err = std::max(err, std::abs(got[i] - ref[i]));
  return err;
}

// Gradients of sum(conv(x, w, b) * gy) by direct loops (double), the
// transpose of naive_conv: dx, dw, db.
void naive_conv_backward(const Tensor& x, const Tensor& w, const ConvGeometry& g, const std::vector<double>& gy,
                         std::vector<double>& dx, std::vector<double>& dw, std::vector<double>& db) {
  const int dims = static_cast<int>(x.dim()) - 2, shift = 3 - dims;
  const std::vector<double> xv = x.to_double_vector(), wv = w.to_double_vector();
  std::int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, p[3] = {0, 0, 0}, d[3] = {1, 1, 1};
  std::int64_t out[3] = {1, 1, 1};
  for (int i = 0; i < dims; ++i) {
    in[i + shift] = x.size(2 + i);
    k[i + shift] = g.kernel[i];
    s[i + shift] = g.stride[i];
    p[i + shift] = g.padding[i];
    d[i + shift] = g.dilation[i];
    out[i + shift] = (in[i + shift] + 2 * p[i + shift] - d[i + shift] * (k[i + shift] - 1) - 1) / s[i + shift] + 1;
  }
  const std::int64_t n = x.size(0), cin = x.size(1), cout = w.size(0), cg = cin / g.groups, og = cout / g.groups;
  dx.assign(xv.size(), 0.0);
  dw.assign(wv.size(), 0.0);
  db.assign(static_cast<std::size_t>(cout), 0.0);
  std::size_t yi = 0;
  for (std::int64_t b0 = 0; b0 < n; ++b0)
    for (std::int64_t co = 0; co < cout; ++co)
      for (std::int64_t o0 = 0; o0 < out[0]; ++o0)
        for (std::int64_t o1 = 0; o1 < out[1]; ++o1)
          for (std::int64_t o2 = 0; o2 < out[2]; ++o2, ++yi) {
            const double gv = gy[yi];
            db[co] += gv;
            for (std::int64_t ci = 0; ci < cg; ++ci)
              for (std::int64_t a = 0; a < k[0]; ++a)
                for (std::int64_t bb = 0; bb < k[1]; ++bb)
                  for (std::int64_t c = 0; c < k[2]; ++c) {
                    const std::int64_t i0 = o0 * s[0] - p[0] + a * d[0];
                    const std::int64_t i1 = o1 * s[1] - p[1] + bb * d[1];
                    const std::int64_t i2 = o2 * s[2] - p[2] + c * d[2];
                    if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2]) continue;
                    const std::int64_t xi =
                        (((b0 * cin + (co / og) * cg + ci) * in[0] + i0) * in[1] + i1) * in[2] + i2;
                    const std::int64_t wi = (((co * cg + ci) * k[0] + a) * k[1] + bb) * k[2] + c;
                    dx[xi] += gv * wv[wi];
                    dw[wi] += gv * xv[xi];
                  }
          }
}

double max_abs_diff(const std::vector<double>& a, const Tensor& b) {
  const std::vector<double> bv = b.to_double_vector();
  REQUIRE(a.size() == bv.size());
  double err = 0;
  for (std::size_t i = 0; i < a.size(); ++i) err = std::max(err, std::abs(a[i] - bv[i]));
  return err;
}

void require_grad_ok(const GradCheckResult& r) {
  INFO(r.message);
  INFO("max abs error " << r.max_abs_error);
  REQUIRE(r.ok);
}

}  // namespace

TEST_CASE("conv_output_size follows floor((in + 2p - d(k-1) - 1)/s) + 1") {
  CHECK(conv_output_size({28}, geometry({5}, {1}, {0}, {1})) == std::vector<std::int64_t>{24});
  CHECK(conv_output_size({28, 28}, geometry({5, 5}, {1, 1}, {2, 2}, {1, 1})) == std::vector<std::int64_t>{28, 28});
  CHECK(conv_output_size({7}, geometry({3}, {2}, {1}, {1})) == std::vector<std::int64_t>{4});
  CHECK(conv_output_size({10}, geometry({3}, {1}, {0}, {2})) == std::vector<std::int64_t>{6});
  CHECK(conv_output_size({8, 9, 10}, geometry({3, 2, 1}, {2, 1, 3}, {1, 0, 0}, {1, 2, 1})) ==
        std::vector<std::int64_t>{4, 7, 4});
  // Empty stride/padding/dilation mean 1/0/1.
  CHECK(conv_output_size({6, 5}, geometry({3, 3}, {}, {}, {})) == std::vector<std::int64_t>{4, 3});
}

TEST_CASE("conv_output_size rejects empty outputs and invalid geometry") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_AS(conv_output_size({3}, geometry({5}, {1}, {0}, {1})), ShapeError);
  CHECK_THROWS_WITH(conv_output_size({3}, geometry({5}, {1}, {0}, {1})), Contains("input size 3"));
  CHECK_THROWS_AS(conv_output_size({5}, geometry({3}, {1}, {0}, {3})), ShapeError);  // dilated extent 7 > 5
  CHECK_THROWS_AS(conv_output_size({8}, geometry({3}, {0}, {0}, {1})), ConfigError);
  CHECK_THROWS_WITH(conv_output_size({8}, geometry({3}, {0}, {0}, {1})), Contains("stride 0"));
  CHECK_THROWS_AS(conv_output_size({8}, geometry({3}, {1}, {-1}, {1})), ConfigError);
  CHECK_THROWS_AS(conv_output_size({8}, geometry({0}, {1}, {0}, {1})), ConfigError);
  CHECK_THROWS_AS(conv_output_size({8}, geometry({3}, {1}, {0}, {0})), ConfigError);
  CHECK_THROWS_AS(conv_output_size({8}, geometry({3}, {1}, {0}, {1}, 0)), ConfigError);
  CHECK_THROWS_AS(conv_output_size({8, 8}, geometry({3}, {1}, {0}, {1})), ShapeError);
  CHECK_THROWS_AS(conv_output_size({8, 8}, geometry({3, 3}, {1, 1, 1}, {0, 0}, {1, 1})), ConfigError);
}

TEST_CASE("im2col rows are output positions, columns (c, k0, k1)") {
  const Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  const Tensor cols = im2col(x, geometry({2, 2}, {1, 1}, {0, 0}, {1, 1}));
  CHECK(cols.shape() == Shape{4, 4});
  CHECK(cols.to_vector() == std::vector<float>{1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9});
  // Padding 1, stride 2: zeros where the window leaves the image.
  const Tensor padded = im2col(x, geometry({2, 2}, {2, 2}, {1, 1}, {1, 1}));
  CHECK(padded.to_vector() == std::vector<float>{0, 0, 0, 1, 0, 0, 2, 3, 0, 4, 0, 7, 5, 6, 8, 9});
  // Two channels, two samples: a row holds channel 0's patch then channel 1's.
  std::vector<float> v(2 * 2 * 3);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const Tensor x1 = Tensor::from_vector(v, {2, 2, 3});  // [N=2, C=2, W=3]
  const Tensor c1 = im2col(x1, geometry({2}, {1}, {0}, {1}));
  CHECK(c1.shape() == Shape{4, 4});
  CHECK(c1.to_vector() == std::vector<float>{0, 1, 3, 4, 1, 2, 4, 5, 6, 7, 9, 10, 7, 8, 10, 11});
}

TEST_CASE("col2im adds overlapping patches back") {
  const Tensor cols = Tensor::ones({4, 4});
  const Tensor image = col2im(cols, 1, {3, 3}, geometry({2, 2}, {1, 1}, {0, 0}, {1, 1}));
  CHECK(image.shape() == Shape{1, 1, 3, 3});
  CHECK(image.to_vector() == std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  CHECK_THROWS_AS(col2im(Tensor::ones({5, 4}), 1, {3, 3}, geometry({2, 2}, {}, {}, {})), ShapeError);
}

TEST_CASE("gradient checks of im2col and col2im in 1-D, 2-D and 3-D") {
  struct Case {
    Shape x_shape;
    ConvGeometry g;
  };
  const std::vector<Case> cases = {
      {{2, 2, 7}, geometry({3}, {2}, {1}, {2})},
      {{1, 2, 5, 4}, geometry({2, 3}, {2, 1}, {1, 1}, {1, 2})},
      {{1, 2, 4, 3, 4}, geometry({2, 2, 3}, {1, 2, 1}, {1, 0, 1}, {2, 1, 1})},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Case& c = cases[i];
    Tensor x = random_tensor(c.x_shape, 10 + i, DType::Float64).set_requires_grad();
    require_grad_ok(grad_check([&](const std::vector<Tensor>& in) { return im2col(in[0], c.g); }, {x}));
    const Shape cols_shape = im2col(x, c.g).shape();
    Tensor cols = random_tensor(cols_shape, 20 + i, DType::Float64).set_requires_grad();
    const std::vector<std::int64_t> input(c.x_shape.begin() + 2, c.x_shape.end());
    require_grad_ok(grad_check(
        [&](const std::vector<Tensor>& in) { return col2im(in[0], c.x_shape[1], input, c.g); }, {cols}));
  }
}

TEST_CASE("rows_to_channels reorders rows and passes gradients back") {
  std::vector<float> v(12);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  const Tensor rows = Tensor::from_vector(v, {6, 2});  // n=2, L=3, C=2
  const Tensor y = rows_to_channels(rows, 2, {3});
  CHECK(y.shape() == Shape{2, 2, 3});
  CHECK(y.to_vector() == std::vector<float>{0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11});
  Tensor r = random_tensor({8, 3}, 5, DType::Float64).set_requires_grad();
  require_grad_ok(grad_check([](const std::vector<Tensor>& in) { return rows_to_channels(in[0], 2, {2, 2}); }, {r}));
  CHECK_THROWS_AS(rows_to_channels(r, 3, {2, 2}), ShapeError);
}

TEST_CASE("conv matches a direct convolution loop (float32, 1e-5)") {
  struct Case {
    Shape x_shape;
    std::int64_t cout;
    ConvGeometry g;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{4, 3, 12, 11}, 5, geometry({3, 3}, {1, 1}, {1, 1}, {1, 1}), true},
      {{2, 4, 13, 10}, 6, geometry({3, 2}, {2, 3}, {2, 1}, {2, 1}, 2), true},
      {{3, 1, 28, 28}, 6, geometry({5, 5}, {1, 1}, {2, 2}, {1, 1}), true},   // LeNet conv1
      {{3, 6, 14, 14}, 16, geometry({5, 5}, {1, 1}, {0, 0}, {1, 1}), false},  // LeNet conv2
      {{2, 4, 9, 9}, 8, geometry({3, 3}, {2, 2}, {1, 1}, {1, 1}, 4), true},   // depthwise, multiplier 2
      {{2, 3, 17}, 4, geometry({4}, {3}, {2}, {2}), true},                     // 1-D
      {{2, 2, 6, 5, 7}, 4, geometry({3, 2, 3}, {2, 1, 2}, {1, 1, 0}, {1, 2, 1}, 2), true},  // 3-D
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Case& c = cases[i];
    CHECK(conv_error_vs_naive(c.x_shape, c.cout, c.g, c.bias, 100 + 7 * i) <= 1e-5);
  }
}

TEST_CASE("gradient checks of conv: 1-D, 2-D, 3-D, stride, padding, dilation, groups") {
  struct Case {
    Shape x_shape;
    std::int64_t cout;
    ConvGeometry g;
    bool bias;
  };
  const std::vector<Case> cases = {
      {{2, 2, 9}, 3, geometry({3}, {2}, {1}, {2}), true},                                   // 1-D
      {{2, 2, 6, 5}, 3, geometry({3, 2}, {1, 2}, {1, 0}, {1, 2}), true},                   // 2-D
      {{1, 4, 5, 6}, 4, geometry({2, 3}, {2, 1}, {1, 1}, {1, 1}, 2), false},               // groups 2
      {{2, 3, 5, 5}, 6, geometry({3, 3}, {1, 1}, {1, 1}, {1, 1}, 3), true},                // depthwise x2
      {{1, 2, 4, 4, 5}, 2, geometry({2, 2, 3}, {1, 2, 2}, {1, 0, 1}, {2, 1, 1}), true},    // 3-D
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Case& c = cases[i];
    Shape w_shape{c.cout, c.x_shape[1] / c.g.groups};
    w_shape.insert(w_shape.end(), c.g.kernel.begin(), c.g.kernel.end());
    Tensor x = random_tensor(c.x_shape, 30 + i, DType::Float64).set_requires_grad();
    Tensor w = random_tensor(w_shape, 40 + i, DType::Float64).set_requires_grad();
    Tensor b = c.bias ? random_tensor({c.cout}, 50 + i, DType::Float64).set_requires_grad() : Tensor();
    require_grad_ok(grad_check(
        [&](const std::vector<Tensor>& in) { return conv(in[0], in[1], in[2], c.g); }, {x, w, b}));
  }
}

TEST_CASE("conv backward matches direct loops on LeNet-sized problems (float64, 1e-10)") {
  // N * L = 3 * 784 = 2352 rows: the weight gradient's long inner dimension
  // is split into chunks whose partial products are summed.
  struct Case {
    Shape x_shape;
    std::int64_t cout;
    ConvGeometry g;
  };
  const std::vector<Case> cases = {
      {{3, 1, 28, 28}, 6, geometry({5, 5}, {1, 1}, {2, 2}, {1, 1})},
      {{4, 6, 14, 14}, 16, geometry({5, 5}, {1, 1}, {0, 0}, {1, 1})},
      {{2, 4, 30, 30}, 4, geometry({3, 3}, {2, 2}, {1, 1}, {2, 2}, 4)},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Case& c = cases[i];
    Shape w_shape{c.cout, c.x_shape[1] / c.g.groups};
    w_shape.insert(w_shape.end(), c.g.kernel.begin(), c.g.kernel.end());
    Tensor x = random_tensor(c.x_shape, 80 + i, DType::Float64).set_requires_grad();
    Tensor w = random_tensor(w_shape, 90 + i, DType::Float64).set_requires_grad();
    Tensor b = random_tensor({c.cout}, 95 + i, DType::Float64).set_requires_grad();
    const Tensor y = conv(x, w, b, c.g);
    const Tensor gy = random_tensor(y.shape(), 99 + i, DType::Float64);
    y.backward(gy);
    std::vector<double> dx, dw, db;
    naive_conv_backward(x, w, c.g, gy.to_double_vector(), dx, dw, db);
    CHECK(max_abs_diff(dx, x.grad()) <= 1e-10);
    CHECK(max_abs_diff(dw, w.grad()) <= 1e-10);
    CHECK(max_abs_diff(db, b.grad()) <= 1e-10);
  }
}

TEST_CASE("conv gradients when only the weight requires grad") {
  Tensor x = random_tensor({2, 1, 6, 6}, 61, DType::Float64);
  Tensor w = random_tensor({2, 1, 3, 3}, 62, DType::Float64).set_requires_grad();
  Tensor b = random_tensor({2}, 63, DType::Float64).set_requires_grad();
  const ConvGeometry g = geometry({3, 3}, {1, 1}, {1, 1}, {1, 1});
  require_grad_ok(grad_check([&](const std::vector<Tensor>& in) { return conv(in[0], in[1], in[2], g); }, {x, w, b}));
}

TEST_CASE("conv rejects mismatched shapes naming both") {
  using Catch::Matchers::Contains;
  const Tensor x = Tensor::zeros({1, 3, 8, 8});
  const ConvGeometry g = geometry({3, 3}, {1, 1}, {0, 0}, {1, 1});
  CHECK_THROWS_AS(conv(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), g), ShapeError);
  CHECK_THROWS_WITH(conv(x, Tensor::zeros({4, 2, 3, 3}), Tensor(), g),
                    Contains("[4, 2, 3, 3]") && Contains("[1, 3, 8, 8]"));
  CHECK_THROWS_AS(conv(x, Tensor::zeros({4, 3, 5, 5}), Tensor(), g), ShapeError);  // kernel mismatch
  CHECK_THROWS_AS(conv(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({5}), g), ShapeError);
  CHECK_THROWS_AS(conv(x, Tensor::zeros({4, 3, 3}), Tensor(), geometry({3}, {}, {}, {})), ShapeError);
  ConvGeometry g3 = g;
  g3.groups = 3;
  CHECK_THROWS_AS(conv(x, Tensor::zeros({4, 1, 3, 3}), Tensor(), g3), ConfigError);  // 4 % 3 != 0
  CHECK_THROWS_AS(conv(x, Tensor::zeros({4, 3, 3, 3}, DType::Float64), Tensor(), g), Error);
}

TEST_CASE("conv forward and backward bits do not depend on the thread count") {
  const ConvGeometry g = geometry({3, 3}, {1, 1}, {1, 1}, {1, 1}, 2);
  const Tensor x0 = random_tensor({16, 4, 20, 20}, 71, DType::Float32);
  const Tensor w0 = random_tensor({8, 2, 3, 3}, 72, DType::Float32);
  const Tensor b0 = random_tensor({8}, 73, DType::Float32);
  const Tensor r = random_tensor({16, 8, 20, 20}, 74, DType::Float32);
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 8}) {
    cpu::set_num_threads(threads);
    Tensor x = x0.clone().set_requires_grad();
    Tensor w = w0.clone().set_requires_grad();
    Tensor b = b0.clone().set_requires_grad();
    Tensor y = conv(x, w, b, g);
    y.backward(r);
    std::vector<float> all = y.to_vector();
    for (const Tensor& t : {x.grad(), w.grad(), b.grad()}) {
      const std::vector<float> v = t.to_vector();
      all.insert(all.end(), v.begin(), v.end());
    }
    results.push_back(all);
  }
  cpu::set_num_threads(0);
  CHECK(results[0] == results[1]);
  CHECK(results[0] == results[2]);
}

TEST_CASE("conv_transpose: a known 1-D answer, the adjoint of conv, gradients") {
  // x = [1, 2], kernel [1, 10, 100], stride 2: 1 * kernel at 0, 2 * kernel at 2, overlapping at 2.
  const Tensor x = Tensor::from_vector(std::vector<double>{1, 2}, {1, 1, 2});
  const Tensor w = Tensor::from_vector(std::vector<double>{1, 10, 100}, {1, 1, 3});
  const Tensor y = conv_transpose(x, w, Tensor(), geometry({3}, {2}, {0}, {1}));
  REQUIRE(y.shape() == Shape{1, 1, 5});
  const std::vector<double> want{1, 10, 102, 20, 200};
  for (std::int64_t i = 0; i < 5; ++i) CHECK(y.contiguous().data<double>()[i] == want[static_cast<std::size_t>(i)]);

  // <conv(x, W), y> = <x, conv_transpose(y, W)> with output_padding restoring x's size (float64: 1e-12).
  struct Case {
    Shape x_shape;
    std::int64_t c_out;
    ConvGeometry g;
  };
  const std::vector<Case> cases = {
      {{2, 3, 9}, 2, geometry({3}, {2}, {1}, {1})},
      {{1, 2, 7, 6}, 3, geometry({3, 2}, {2, 3}, {1, 0}, {1, 2})},
      {{1, 2, 5, 4, 5}, 2, geometry({2, 2, 3}, {2, 1, 2}, {0, 1, 1}, {1, 1, 1})},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i);
    const Case& c = cases[i];
    Shape w_shape{c.c_out, c.x_shape[1]};
    for (auto k : c.g.kernel) w_shape.push_back(k);
    const Tensor xi = random_tensor(c.x_shape, 30 + i, DType::Float64);
    const Tensor wc = random_tensor(w_shape, 40 + i, DType::Float64);
    const Tensor yc = conv(xi, wc, Tensor(), c.g);
    const Tensor yi = random_tensor(yc.shape(), 50 + i, DType::Float64);
    std::vector<std::int64_t> op;
    for (std::size_t d = 0; d < c.g.kernel.size(); ++d)
      op.push_back(c.x_shape[d + 2] - ((yc.size(static_cast<std::int64_t>(d) + 2) - 1) * c.g.stride[d] -
                                       2 * c.g.padding[d] + c.g.dilation[d] * (c.g.kernel[d] - 1) + 1));
    const Tensor xt = conv_transpose(yi, wc, Tensor(), c.g, op);
    REQUIRE(xt.shape() == xi.shape());
    const double lhs = sum(mul(yc, yi)).item(), rhs = sum(mul(xi, xt)).item();
    CHECK(lhs == Approx(rhs).epsilon(1e-12));

    Tensor xg = yi.clone().set_requires_grad(), wg = wc.clone().set_requires_grad();
    Tensor bg = random_tensor({c.x_shape[1]}, 60 + i, DType::Float64).set_requires_grad();
    require_grad_ok(grad_check(
        [&](const std::vector<Tensor>& in) { return conv_transpose(in[0], in[1], in[2], c.g, op); }, {xg, wg, bg}));
  }
}
