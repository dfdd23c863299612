// Gradient checks (float64 central differences, engine/grad_check.h) for every
// elementwise, activation, reduction, loss, linear-algebra and shape op,
// including broadcasting ([3,1]+[1,4], [N,C]+[C], scalars) and
// non-contiguous (transposed) inputs. Tolerance: |analytic - numeric| <=
// 1e-6 + 1e-4 |numeric| per element (grad_check defaults).
#include <catch2/catch.hpp>

#include <functional>

#include "engine/generator.h"
#include "engine/grad_check.h"
#include "engine/ops.h"

using namespace aimc;

namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

// A float64 leaf with values uniform in [low, high).
Tensor leaf(const Shape& shape, std::uint64_t seed, double low = -1.0, double high = 1.0) {
  Generator gen(seed, 3);
  Tensor t = gen.uniform(shape, low, high, DType::Float64);
  t.set_requires_grad();
  return t;
}

// Values with |x| in [0.2, 1) and random signs: keeps kinks (abs, relu) out of reach of eps.
Tensor leaf_away_from_zero(const Shape& shape, std::uint64_t seed) {
  Generator gen(seed, 5);
  Tensor mag = gen.uniform(shape, 0.2, 1.0, DType::Float64);
  Tensor sign = gen.uniform(shape, -1.0, 1.0, DType::Float64);
  std::vector<double> m = mag.to_double_vector(), s = sign.to_double_vector();
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = s[i] < 0 ? -m[i] : m[i];
  Tensor t = Tensor::from_vector(m, shape);
  t.set_requires_grad();
  return t;
}

void expect_grad(const Fn& f, const std::vector<Tensor>& inputs) {
  const GradCheckResult r = grad_check(f, inputs);
  INFO(r.message << " (max abs error " << r.max_abs_error << ")");
  CHECK(r.ok);
  CHECK(r.max_abs_error < 1e-5);
}

}  // namespace

TEST_CASE("add/sub/mul/div gradients with same shapes and broadcasting") {
  struct Case {
    Shape a, b;
  };
  const std::vector<Case> cases = {{{2, 3}, {2, 3}}, {{3, 1}, {1, 4}}, {{4, 5}, {5}},     {{5}, {4, 5}},
                                   {{}, {2, 3}},     {{2, 3}, {}},     {{2, 1, 3}, {4, 1}}, {{2, 3, 4}, {2, 1, 4}}};
  std::uint64_t seed = 1;
  for (const auto& c : cases) {
    INFO("a " << shape_str(c.a) << " b " << shape_str(c.b));
    Tensor a = leaf(c.a, seed++), b = leaf(c.b, seed++);
    Tensor bpos = leaf(c.b, seed++, 0.5, 2.0);
    expect_grad([](const std::vector<Tensor>& x) { return add(x[0], x[1]); }, {a, b});
    expect_grad([](const std::vector<Tensor>& x) { return sub(x[0], x[1]); }, {a, b});
    expect_grad([](const std::vector<Tensor>& x) { return mul(x[0], x[1]); }, {a, b});
    expect_grad([](const std::vector<Tensor>& x) { return div(x[0], x[1]); }, {a, bpos});
  }
}

TEST_CASE("binary op gradients with a non-contiguous (transposed) input") {
  Tensor a = leaf({4, 3}, 11), b = leaf({3, 4}, 12), bias = leaf({4}, 13);
  expect_grad([](const std::vector<Tensor>& x) { return add(transpose(x[0], 0, 1), x[1]); }, {a, b});
  expect_grad([](const std::vector<Tensor>& x) { return mul(transpose(x[0], 0, 1), x[1]); }, {a, b});
  expect_grad([](const std::vector<Tensor>& x) { return mul(transpose(x[0], 0, 1), x[1]); }, {a, bias});
  expect_grad([](const std::vector<Tensor>& x) { return sub(x[1], slice(x[0], 1, 0, 1)); }, {a, bias});
}

TEST_CASE("only one input of a binary op requires grad") {
  Tensor a = leaf({3, 4}, 14);
  Tensor b = leaf({4}, 15, 0.5, 2.0);
  b.set_requires_grad(false);
  expect_grad([](const std::vector<Tensor>& x) { return div(x[0], x[1]); }, {a, b});
  expect_grad([](const std::vector<Tensor>& x) { return div(x[1], x[0]); }, {leaf({3, 4}, 16, 0.5, 2.0), b});
}

TEST_CASE("unary elementwise op gradients") {
  Tensor x = leaf({3, 4}, 21);
  Tensor pos = leaf({3, 4}, 22, 0.3, 2.0);
  Tensor away = leaf_away_from_zero({3, 4}, 23);
  expect_grad([](const std::vector<Tensor>& v) { return add_scalar(v[0], 1.5); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return mul_scalar(v[0], -2.5); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return neg(v[0]); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return exp(v[0]); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return log(v[0]); }, {pos});
  expect_grad([](const std::vector<Tensor>& v) { return sqrt(v[0]); }, {pos});
  expect_grad([](const std::vector<Tensor>& v) { return square(v[0]); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return abs(v[0]); }, {away});
  for (double p : {2.0, 3.0, 2.5, -1.5, 0.5, 1.0, 0.0}) {
    INFO("exponent " << p);
    expect_grad([p](const std::vector<Tensor>& v) { return pow_scalar(v[0], p); }, {pos});
  }
  expect_grad([](const std::vector<Tensor>& v) { return pow_scalar(v[0], 3.0); }, {x});
  // Non-contiguous input.
  expect_grad([](const std::vector<Tensor>& v) { return exp(transpose(v[0], 0, 1)); }, {x});
}

TEST_CASE("activation gradients") {
  Tensor x = leaf_away_from_zero({4, 5}, 31);
  Tensor wide = leaf({4, 5}, 32, -4.0, 4.0);
  expect_grad([](const std::vector<Tensor>& v) { return relu(v[0]); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return leaky_relu(v[0], 0.1); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return sigmoid(v[0]); }, {wide});
  expect_grad([](const std::vector<Tensor>& v) { return tanh(v[0]); }, {wide});
  expect_grad([](const std::vector<Tensor>& v) { return gelu(v[0]); }, {wide});
  expect_grad([](const std::vector<Tensor>& v) { return gelu(transpose(v[0], 0, 1)); }, {wide});
  expect_grad([](const std::vector<Tensor>& v) { return erf(v[0]); }, {wide});
}

TEST_CASE("sum and mean gradients over all elements and over axes") {
  Tensor x = leaf({2, 3, 4}, 41);
  expect_grad([](const std::vector<Tensor>& v) { return sum(v[0]); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return mean(v[0]); }, {x});
  const std::vector<std::vector<std::int64_t>> axes_list = {{0}, {1}, {2}, {-1}, {0, 1}, {1, 2}, {0, 2}, {0, 1, 2}};
  for (const auto& axes : axes_list) {
    for (bool keepdim : {false, true}) {
      INFO("axes size " << axes.size() << " first " << axes[0] << " keepdim " << keepdim);
      expect_grad([axes, keepdim](const std::vector<Tensor>& v) { return sum(v[0], axes, keepdim); }, {x});
      expect_grad([axes, keepdim](const std::vector<Tensor>& v) { return mean(v[0], axes, keepdim); }, {x});
    }
  }
  // Non-contiguous input.
  expect_grad([](const std::vector<Tensor>& v) { return sum(transpose(v[0], 0, 2), {1}, false); }, {x});
}

TEST_CASE("softmax and log_softmax gradients along every dim") {
  Tensor x = leaf({2, 3, 4}, 51, -3.0, 3.0);
  for (std::int64_t dim : {0, 1, 2, -1}) {
    INFO("dim " << dim);
    expect_grad([dim](const std::vector<Tensor>& v) { return softmax(v[0], dim); }, {x});
    expect_grad([dim](const std::vector<Tensor>& v) { return log_softmax(v[0], dim); }, {x});
  }
  Tensor m = leaf({5, 3}, 52, -3.0, 3.0);
  expect_grad([](const std::vector<Tensor>& v) { return softmax(transpose(v[0], 0, 1), -1); }, {m});
}

TEST_CASE("cross_entropy and mse_loss gradients") {
  Tensor logits = leaf({5, 4}, 61, -3.0, 3.0);
  const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{0, 3, 1, 1, 2}, {5});
  expect_grad([labels](const std::vector<Tensor>& v) { return cross_entropy(v[0], labels); }, {logits});
  expect_grad([labels](const std::vector<Tensor>& v) { return mul_scalar(cross_entropy(v[0], labels), 3.0); },
              {logits});
  Tensor p = leaf({3, 4}, 62), t = leaf({3, 4}, 63);
  expect_grad([](const std::vector<Tensor>& v) { return mse_loss(v[0], v[1]); }, {p, t});
}

TEST_CASE("batched and vector matmul gradients, broadcast batch dims; N-D linear") {
  struct Case {
    Shape a, b;
  };
  // Same batch, one side broadcast (2-D or batch 1), both broadcast, vectors.
  const std::vector<Case> cases = {{{2, 3, 4}, {2, 4, 5}}, {{2, 3, 4}, {4, 5}},       {{3, 4}, {2, 4, 5}},
                                   {{2, 1, 3, 4}, {3, 4, 2}}, {{1, 3, 4}, {2, 4, 2}}, {{4}, {2, 4, 3}},
                                   {{2, 3, 4}, {4}},          {{4}, {4}},             {{4}, {4, 3}}};
  std::uint64_t seed = 201;
  for (const auto& c : cases) {
    INFO("a " << shape_str(c.a) << " b " << shape_str(c.b));
    Tensor a = leaf(c.a, seed++), b = leaf(c.b, seed++);
    expect_grad([](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); }, {a, b});
  }
  // A transposed (non-contiguous) batched operand.
  expect_grad([](const std::vector<Tensor>& v) { return matmul(transpose(v[0], 1, 2), v[1]); },
              {leaf({2, 4, 3}, 230), leaf({2, 4, 5}, 231)});
  Tensor x = leaf({2, 3, 5}, 232), w = leaf({4, 5}, 233), bias = leaf({4}, 234);
  expect_grad([](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); }, {x, w, bias});
  expect_grad([](const std::vector<Tensor>& v) { return linear(v[0], v[1], Tensor()); }, {leaf({5}, 235), w});
  expect_grad([](const std::vector<Tensor>& v) { return linear(transpose(v[0], 0, 2), v[1], v[2]); },
              {leaf({5, 3, 2}, 236), w, bias});
}

TEST_CASE("matmul and linear gradients, contiguous and transposed operands") {
  Tensor a = leaf({3, 5}, 71), b = leaf({5, 4}, 72);
  expect_grad([](const std::vector<Tensor>& v) { return matmul(v[0], v[1]); }, {a, b});
  Tensor at = leaf({5, 3}, 73), bt = leaf({4, 5}, 74);
  expect_grad([](const std::vector<Tensor>& v) { return matmul(transpose(v[0], 0, 1), transpose(v[1], 0, 1)); },
              {at, bt});
  // A column slice: row stride larger than the number of columns.
  Tensor wide = leaf({3, 8}, 75);
  expect_grad([](const std::vector<Tensor>& v) { return matmul(slice(v[0], 1, 2, 7), v[1]); }, {wide, b});

  Tensor x = leaf({6, 5}, 76), w = leaf({4, 5}, 77), bias = leaf({4}, 78);
  expect_grad([](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); }, {x, w, bias});
  expect_grad([](const std::vector<Tensor>& v) { return linear(v[0], v[1], Tensor()); }, {x, w});
  Tensor wt = leaf({5, 4}, 79);  // weight given as a transposed view
  expect_grad([](const std::vector<Tensor>& v) { return linear(v[0], transpose(v[1], 0, 1), v[2]); }, {x, wt, bias});
  expect_grad([](const std::vector<Tensor>& v) { return linear(transpose(v[0], 0, 1), v[1], v[2]); },
              {leaf({5, 6}, 80), w, bias});
}

TEST_CASE("shape op gradients") {
  Tensor x = leaf({2, 3, 4}, 81);
  expect_grad([](const std::vector<Tensor>& v) { return reshape(v[0], {4, -1}); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return flatten(v[0]); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return flatten(v[0], 0, 1); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return transpose(v[0], 0, 2); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return permute(v[0], {2, 0, 1}); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return slice(v[0], 1, 1, 3); }, {x});
  expect_grad([](const std::vector<Tensor>& v) { return slice(v[0], -1, 0, -1); }, {x});
  Tensor y = leaf({2, 2, 4}, 82);
  expect_grad([](const std::vector<Tensor>& v) { return concat({v[0], v[1]}, 1); }, {x, y});
  expect_grad([](const std::vector<Tensor>& v) { return concat({v[0], v[0]}, 0); }, {x});
  // Reshape of a non-contiguous view.
  expect_grad([](const std::vector<Tensor>& v) { return reshape(transpose(v[0], 0, 1), {3, 8}); }, {x});
}

TEST_CASE("a small MLP chain checks end to end") {
  Tensor x = leaf({4, 6}, 91), w1 = leaf({5, 6}, 92), b1 = leaf({5}, 93), w2 = leaf({3, 5}, 94), b2 = leaf({3}, 95);
  const Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{2, 0, 1, 2}, {4});
  expect_grad(
      [labels](const std::vector<Tensor>& v) {
        Tensor h = tanh(linear(v[0], v[1], v[2]));
        return cross_entropy(add(linear(h, v[3], Tensor()), v[4]), labels);
      },
      {x, w1, b1, w2, b2});
}
