// Tensor core: factories, views, copies, dtype conversion, errors, alignment.
#include <catch2/catch.hpp>
#include <climits>
#include <cmath>
#include <cstdint>

#include "engine/ops.h"
#include "engine/tensor.h"

using namespace aimc;

TEST_CASE("factories fill and report shape, dtype and device") {
  Tensor z = Tensor::zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.numel() == 6);
  CHECK(z.dtype() == DType::Float32);
  CHECK(z.device().is_cpu());
  CHECK(z.is_contiguous());
  for (float v : z.to_vector()) CHECK(v == 0.f);
  Tensor f = Tensor::full({4}, 2.5, DType::Float64);
  CHECK(f.to_double_vector() == std::vector<double>{2.5, 2.5, 2.5, 2.5});
  CHECK(Tensor::scalar(3.0).item() == 3.0);
  CHECK(Tensor::scalar(3.0).dim() == 0);
}

TEST_CASE("CPU storage is 64-byte aligned") {
  for (std::int64_t n : {1, 3, 17, 1000}) {
    Tensor t = Tensor::empty({n});
    CHECK(reinterpret_cast<std::uintptr_t>(t.raw_data()) % 64 == 0);
  }
}

TEST_CASE("more than 5 dims or a wrong element count raise ShapeError") {
  CHECK_THROWS_AS(Tensor::zeros({1, 1, 1, 1, 1, 1}), ShapeError);
  CHECK_THROWS_AS(Tensor::from_vector(std::vector<float>{1, 2, 3}, {2, 2}), ShapeError);
  CHECK_THROWS_AS(Tensor::zeros({2, 3}).reshape({4, 2}), ShapeError);
}

TEST_CASE("reshape of contiguous data is a view; -1 is inferred") {
  Tensor a = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor b = a.reshape({3, -1});
  CHECK(b.shape() == Shape{3, 2});
  CHECK(b.storage() == a.storage());
  b.data<float>()[0] = 42;
  CHECK(a.to_vector()[0] == 42.f);
}

TEST_CASE("transpose and slice are views with strides; contiguous copies them") {
  Tensor a = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor t = a.transpose(0, 1);
  CHECK(t.shape() == Shape{3, 2});
  CHECK(!t.is_contiguous());
  CHECK(t.storage() == a.storage());
  CHECK(t.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  Tensor s = a.slice(1, 1, 3);
  CHECK(s.shape() == Shape{2, 2});
  CHECK(s.to_vector() == std::vector<float>{1, 2, 4, 5});
  Tensor c = t.contiguous();
  CHECK(c.is_contiguous());
  CHECK(c.storage() != a.storage());
  CHECK(c.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
  CHECK_THROWS_AS(a.slice(1, 2, 5), ShapeError);
  CHECK_THROWS_AS(a.transpose(0, 2), ShapeError);
}

TEST_CASE("copy_, add_, mul_ and fill_ work in place, also through views") {
  Tensor a = Tensor::zeros({2, 3});
  a.slice(1, 0, 2).fill_(1.0);
  CHECK(a.to_vector() == std::vector<float>{1, 1, 0, 1, 1, 0});
  Tensor b = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  a.add_(b, 2.0);
  CHECK(a.to_vector() == std::vector<float>{3, 5, 6, 9, 11, 12});
  a.mul_(0.5);
  CHECK(a.to_vector() == std::vector<float>{1.5, 2.5, 3, 4.5, 5.5, 6});
  Tensor c = Tensor::zeros({3, 2});
  c.copy_(b.transpose(0, 1));
  CHECK(c.to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK_THROWS_AS(c.copy_(b), ShapeError);
}

TEST_CASE("dtype conversion and typed access checks") {
  Tensor a = Tensor::from_vector(std::vector<float>{1.5f, -2.f}, {2});
  Tensor d = a.to(DType::Float64);
  CHECK(d.dtype() == DType::Float64);
  CHECK(d.to_double_vector() == std::vector<double>{1.5, -2.0});
  CHECK_THROWS_AS(a.data<double>(), ValueError);
  Tensor i = Tensor::from_vector(std::vector<std::int32_t>{3, 4}, {2});
  CHECK(i.to(DType::Float32).to_vector() == std::vector<float>{3, 4});
}

TEST_CASE("clone is a deep copy") {
  Tensor a = Tensor::ones({3});
  Tensor b = a.clone();
  b.fill_(7);
  CHECK(a.to_vector() == std::vector<float>{1, 1, 1});
}

TEST_CASE("an undefined tensor reports a clear error") {
  Tensor u;
  CHECK(!u.defined());
  CHECK_THROWS_AS(u.shape(), ValueError);
}

TEST_CASE("shapes whose byte size overflows raise ShapeError instead of allocating") {
  CHECK_THROWS_AS(Tensor::zeros({std::int64_t(1) << 62}), ShapeError);
  CHECK_THROWS_AS(Tensor::zeros({std::int64_t(1) << 31, std::int64_t(1) << 31, std::int64_t(1) << 31}), ShapeError);
}

TEST_CASE("copy_ between overlapping views of one storage reads before it writes") {
  Tensor x = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8}, {3, 3});
  x.transpose(0, 1).copy_(x);  // x becomes its own transpose
  CHECK(x.to_vector() == std::vector<float>{0, 3, 6, 1, 4, 7, 2, 5, 8});
}

TEST_CASE("float to int32 conversion saturates and maps NaN to 0") {
  Tensor f = Tensor::from_vector(std::vector<float>{1.9f, -2.5f, 1e20f, -1e20f, std::nanf("")}, {5});
  Tensor i = f.to(DType::Int32);
  const std::int32_t* p = i.data<std::int32_t>();
  CHECK(p[0] == 1);
  CHECK(p[1] == -2);
  CHECK(p[2] == INT32_MAX);
  CHECK(p[3] == INT32_MIN);
  CHECK(p[4] == 0);
}

TEST_CASE("int64 holds all 64 bits, converts exactly and saturates from floats") {
  // 2^53 + 1 and INT64_MIN: exact in int64, not in a double.
  Tensor i = Tensor::from_vector(std::vector<std::int64_t>{(std::int64_t(1) << 53) + 1, INT64_MIN, -3}, {3});
  CHECK(i.dtype() == DType::Int64);
  CHECK(dtype_size(DType::Int64) == 8);
  CHECK(i.clone().data<std::int64_t>()[0] == (std::int64_t(1) << 53) + 1);
  CHECK(i.to(DType::Float64).data<double>()[2] == -3.0);
  const Tensor i32 = i.to(DType::Int32);  // saturates
  const std::int32_t* narrow = i32.data<std::int32_t>();
  CHECK(narrow[0] == INT32_MAX);
  CHECK(narrow[1] == INT32_MIN);
  CHECK(narrow[2] == -3);
  CHECK(Tensor::from_vector(std::vector<std::int32_t>{-5}, {1}).to(DType::Int64).data<std::int64_t>()[0] == -5);
  Tensor f = Tensor::from_vector(std::vector<double>{1.9, -2.5, 1e19, -1e19, std::nan(""), 9007199254740992.0}, {6});
  const Tensor i64 = f.to(DType::Int64);
  const std::int64_t* p = i64.data<std::int64_t>();
  CHECK(p[0] == 1);
  CHECK(p[1] == -2);
  CHECK(p[2] == INT64_MAX);
  CHECK(p[3] == INT64_MIN);
  CHECK(p[4] == 0);
  CHECK(p[5] == std::int64_t(1) << 53);
  Tensor z = Tensor::zeros({2}, DType::Int64);
  z.fill_(7);
  CHECK(z.data<std::int64_t>()[1] == 7);
  CHECK(Tensor::scalar(-4, DType::Int64).item() == -4.0);
  CHECK_THROWS_AS(z.set_requires_grad(true), ValueError);
}
