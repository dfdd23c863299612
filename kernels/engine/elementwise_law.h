// Per-element math of the engine's elementwise ops and their backward rules,
// shared by the CPU ops (engine/ops_elementwise.cpp, ops_activation.cpp) and
// their CUDA kernels (kernels/cuda/engine_ops.cu), so both compute the same
// expression. Arithmetic kinds give the same bits on every device; the
// transcendental ones (exp, log, tanh, erf, pow) call the C library on the
// host and CUDA's own functions on a GPU, which may differ by a few ulp.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/random.h"  // AIMC_HD

namespace aimc::engine_law {

// Unary maps y = f(x; p) with one scalar parameter p (unused by most).
enum class Unary : int {
  copy, neg, exp, log, sqrt, square, abs, add_scalar, mul_scalar, pow_scalar,
  relu, leaky_relu, sigmoid, tanh, erf, gelu
};

// Binary maps y = f(a, b; p). The *_grad kinds are backward rules: a is the
// incoming gradient, b the saved input (x) or output (y) named in the comment.
enum class Binary : int {
  first,          // a (a strided or broadcast copy)
  add, sub, mul, div,
  neg_mul,        // -(a b): div's gradient for the divisor, -(g/b) y
  sqrt_grad,      // g / (2 y), y = sqrt(x)
  square_grad,    // g 2x
  abs_grad,       // g sign(x), 0 at 0, NaN stays NaN
  pow_grad,       // g p x^(p-1)
  relu_grad,      // g where x > 0
  leaky_relu_grad,  // g, or g p where x <= 0
  sigmoid_grad,   // g y (1 - y)
  tanh_grad,      // g (1 - y²)
  erf_grad,       // g 2/sqrt(pi) exp(-x²)
  gelu_grad,      // g (Phi(x) + x phi(x))
  mse_grad,       // p (a - b) (p = 2 g / n)
  dropout_mask    // a / p where the mask b is non-zero, else 0 (p = 1 - drop probability)
};

// The C library on the host, CUDA's math on the device, per float type.
AIMC_HD float law_exp(float x) { return ::expf(x); }
AIMC_HD double law_exp(double x) { return ::exp(x); }
AIMC_HD float law_log(float x) { return ::logf(x); }
AIMC_HD double law_log(double x) { return ::log(x); }
AIMC_HD float law_sqrt(float x) { return ::sqrtf(x); }
AIMC_HD double law_sqrt(double x) { return ::sqrt(x); }
AIMC_HD float law_tanh(float x) { return ::tanhf(x); }
AIMC_HD double law_tanh(double x) { return ::tanh(x); }
AIMC_HD float law_erf(float x) { return ::erff(x); }
AIMC_HD double law_erf(double x) { return ::erf(x); }
AIMC_HD float law_pow(float x, float p) { return ::powf(x, p); }
AIMC_HD double law_pow(double x, double p) { return ::pow(x, p); }
AIMC_HD float law_abs(float x) { return ::fabsf(x); }
AIMC_HD double law_abs(double x) { return ::fabs(x); }

constexpr double kTwoOverSqrtPi = 1.12837916709551257390;   // 2/sqrt(pi)
constexpr double kSqrtHalf = 0.70710678118654752440;        // 1/sqrt(2)

template <Unary K, class T>
AIMC_HD T unary(T v, double p) {
  if constexpr (K == Unary::copy) return v;
  if constexpr (K == Unary::neg) return -v;
  if constexpr (K == Unary::exp) return law_exp(v);
  if constexpr (K == Unary::log) return law_log(v);
  if constexpr (K == Unary::sqrt) return law_sqrt(v);
  if constexpr (K == Unary::square) return v * v;
  if constexpr (K == Unary::abs) return law_abs(v);
  if constexpr (K == Unary::add_scalar) return v + static_cast<T>(p);
  if constexpr (K == Unary::mul_scalar) return v * static_cast<T>(p);
  if constexpr (K == Unary::pow_scalar) {
    if (p == 2.0) return v * v;
    if (p == 1.0) return v;
    return law_pow(v, static_cast<T>(p));
  }
  if constexpr (K == Unary::relu) return v <= T(0) ? T(0) : v;
  if constexpr (K == Unary::leaky_relu) return v > T(0) ? v : v * static_cast<T>(p);
  if constexpr (K == Unary::sigmoid) {
    // Never exponentiates a large positive number: e = exp(-|v|), then
    // 1/(1 + e) for v >= 0 and e/(1 + e) below (branch-free numerator).
    const T e = law_exp(-law_abs(v));
    const T numerator = v >= T(0) ? T(1) : e;
    return numerator / (T(1) + e);
  }
  if constexpr (K == Unary::tanh) return law_tanh(v);
  if constexpr (K == Unary::erf) return law_erf(v);
  if constexpr (K == Unary::gelu) return T(0.5) * v * (T(1) + law_erf(v * T(kSqrtHalf)));
  return v;
}

template <Binary K, class T>
AIMC_HD T binary(T a, T b, double p) {
  if constexpr (K == Binary::first) return a;
  if constexpr (K == Binary::add) return a + b;
  if constexpr (K == Binary::sub) return a - b;
  if constexpr (K == Binary::mul) return a * b;
  if constexpr (K == Binary::div) return a / b;
  if constexpr (K == Binary::neg_mul) return -(a * b);
  if constexpr (K == Binary::sqrt_grad) return a * static_cast<T>(0.5) / b;
  if constexpr (K == Binary::square_grad) return a * (b + b);
  if constexpr (K == Binary::abs_grad) return b > T(0) ? a : (b < T(0) ? -a : (b == T(0) ? T(0) : b));
  if constexpr (K == Binary::pow_grad) {
    if (p == 0.0) return T(0);
    if (p == 1.0) return a;
    if (p == 2.0) return a * (b + b);
    return a * static_cast<T>(p) * law_pow(b, static_cast<T>(p - 1.0));
  }
  if constexpr (K == Binary::relu_grad) return b > T(0) ? a : T(0);
  if constexpr (K == Binary::leaky_relu_grad) return b > T(0) ? a : a * static_cast<T>(p);
  if constexpr (K == Binary::sigmoid_grad) return a * b * (T(1) - b);
  if constexpr (K == Binary::tanh_grad) return a * (T(1) - b * b);
  if constexpr (K == Binary::erf_grad) return a * T(kTwoOverSqrtPi) * law_exp(-b * b);
  if constexpr (K == Binary::gelu_grad) {
    const T cdf = T(0.5) * (T(1) + law_erf(b * T(kSqrtHalf)));
    const T pdf = law_exp(T(-0.5) * b * b) * T(0.5 * kTwoOverSqrtPi * kSqrtHalf);  // 1/sqrt(2 pi)
    return a * (cdf + b * pdf);
  }
  if constexpr (K == Binary::mse_grad) return static_cast<T>(p) * (a - b);
  if constexpr (K == Binary::dropout_mask) return b != T(0) ? a / static_cast<T>(p) : T(0);
  return a;
}

// A binary op's iteration space for the CUDA kernel: the contiguous output
// [size] and the element strides of a and b viewed through it (0 on
// broadcast dims), after the CPU's coalescing (engine/ops_elementwise.cpp).
constexpr int kMaxIndexDims = 5;
struct StridedIndex {
  int rank = 0;
  std::int64_t size[kMaxIndexDims] = {};
  std::int64_t stride_a[kMaxIndexDims] = {};
  std::int64_t stride_b[kMaxIndexDims] = {};
};

// Offsets of a and b for the output element i (row-major over size).
AIMC_HD void strided_offsets(const StridedIndex& s, std::int64_t i, std::int64_t& oa, std::int64_t& ob) {
  oa = 0;
  ob = 0;
  for (int d = s.rank - 1; d >= 0; --d) {
    const std::int64_t idx = i % s.size[d];
    i /= s.size[d];
    oa += idx * s.stride_a[d];
    ob += idx * s.stride_b[d];
  }
}

// A sum over some dims of x for the CUDA kernel: the kept dims (output,
// row-major) and the reduced dims (terms, in row-major order), each with x's
// element strides. four_way: add the terms as the CPU's deterministic_sum
// adds one chunk (four running sums by term index mod 4, then
// (s0 + s1) + (s2 + s3)); else one running sum in order.
struct ReduceIndex {
  int kept_rank = 0, reduced_rank = 0;
  bool four_way = false;
  std::int64_t kept_size[kMaxIndexDims] = {}, kept_stride[kMaxIndexDims] = {};
  std::int64_t reduced_size[kMaxIndexDims] = {}, reduced_stride[kMaxIndexDims] = {};
};

}  // namespace aimc::engine_law
