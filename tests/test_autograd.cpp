// Autograd engine: accumulation, NoGradGuard, graph freeing, long chains,
// broadcasting undone centrally, shared inputs (diamonds).
#include <catch2/catch.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"

using namespace aimc;

TEST_CASE("gradients of a small expression are exact") {
  // L = sum(x*y + x) -> dL/dx = y + 1, dL/dy = x
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).set_requires_grad();
  Tensor y = Tensor::from_vector(std::vector<float>{4, 5, 6}, {3}).set_requires_grad();
  Tensor loss = sum(add(mul(x, y), x));
  CHECK(loss.item() == Approx(1 * 4 + 2 * 5 + 3 * 6 + 6));
  loss.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{5, 6, 7});
  CHECK(y.grad().to_vector() == std::vector<float>{1, 2, 3});
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor x = Tensor::from_vector(std::vector<float>{2}, {1}).set_requires_grad();
  sum(mul_scalar(x, 3.0)).backward();
  sum(mul_scalar(x, 3.0)).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{6});
  x.zero_grad();
  CHECK(!x.grad().defined());
}

TEST_CASE("a tensor used twice (diamond) receives both gradient paths") {
  Tensor x = Tensor::from_vector(std::vector<float>{3}, {1}).set_requires_grad();
  Tensor a = mul(x, x);         // x^2
  Tensor b = mul_scalar(x, 2);  // 2x
  sum(add(a, b)).backward();    // d/dx = 2x + 2 = 8
  CHECK(x.grad().to_vector() == std::vector<float>{8});
}

TEST_CASE("broadcast gradients are summed back to the input shape") {
  Tensor x = Tensor::ones({4, 3}).set_requires_grad();
  Tensor b = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}).set_requires_grad();
  sum(add(x, b)).backward();
  CHECK(b.grad().shape() == Shape{3});
  CHECK(b.grad().to_vector() == std::vector<float>{4, 4, 4});
  CHECK(x.grad().shape() == Shape{4, 3});
}

TEST_CASE("NoGradGuard stops recording") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  Tensor y;
  {
    NoGradGuard guard;
    y = mul_scalar(x, 2);
    CHECK(!grad_mode_enabled());
  }
  CHECK(grad_mode_enabled());
  CHECK(!y.requires_grad());
  CHECK(!y.grad_fn());
}

TEST_CASE("the graph is freed after backward unless retained") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  Tensor loss = sum(mul_scalar(x, 2));
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();  // second pass allowed once retained
  CHECK(x.grad().to_vector() == std::vector<float>{4, 4});
  CHECK_THROWS_AS(loss.backward(), ValueError);  // freed now
}

TEST_CASE("a chain of 10,000 nodes runs backward and frees without stack overflow") {
  Tensor x = Tensor::from_vector(std::vector<double>{1.0}, {1}).set_requires_grad();
  Tensor y = x;
  for (int i = 0; i < 10000; ++i) y = add_scalar(y, 1e-4);
  Tensor loss = sum(y);
  loss.backward();
  CHECK(x.grad().to_double_vector()[0] == 1.0);
  CHECK(loss.item() == Approx(2.0));
  // Dropping a never-backpropagated long chain must not recurse either.
  {
    Tensor z = x;
    for (int i = 0; i < 200000; ++i) z = add_scalar(z, 1.0);
  }
  SUCCEED();
}

TEST_CASE("backward needs a scalar or an explicit gradient") {
  Tensor x = Tensor::ones({3}).set_requires_grad();
  Tensor y = mul_scalar(x, 2);
  CHECK_THROWS_AS(y.backward(), ShapeError);
  y.backward(Tensor::from_vector(std::vector<float>{1, 0, 2}, {3}));
  CHECK(x.grad().to_vector() == std::vector<float>{2, 0, 4});
  CHECK_THROWS_AS(Tensor::ones({2}).backward(), ValueError);
}

TEST_CASE("views participate in autograd") {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad();
  Tensor s = x.slice(1, 1, 3);        // [[2,3],[5,6]]
  Tensor t = s.transpose(0, 1);       // non-contiguous
  Tensor r = t.contiguous().reshape({4});
  sum(mul(r, r)).backward();          // d/dx = 2x on the sliced part
  CHECK(x.grad().to_vector() == std::vector<float>{0, 4, 6, 0, 10, 12});
}

TEST_CASE("set_requires_grad is for leaves; int tensors cannot require grad") {
  Tensor x = Tensor::ones({2}).set_requires_grad();
  Tensor y = mul_scalar(x, 2);
  CHECK_THROWS_AS(y.set_requires_grad(), ValueError);
  CHECK_THROWS_AS(Tensor::from_vector(std::vector<std::int32_t>{1}, {1}).set_requires_grad(), ValueError);
}

TEST_CASE("backward refuses a gradient of another dtype") {
  Tensor x = Tensor::ones({3}).set_requires_grad();
  Tensor y = mul_scalar(x, 2);
  CHECK_THROWS_AS(y.backward(Tensor::ones({3}, DType::Float64)), ValueError);
}

TEST_CASE("clone and dtype conversion pass gradients through") {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2}, {2}).set_requires_grad();
  sum(mul(x.clone(), x.to(DType::Float64).to(DType::Float32))).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{2, 4});  // d/dx x*x
}
