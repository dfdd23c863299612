// Internal helpers for writing elementwise ops and their backward rules on
// the CPU: maps over contiguous float tensors (parallel, deterministic) and a
// broadcast-expanding copy. None of these record autograd nodes; ops call them
// for forward values and inside backward lambdas.
#pragma once

#include <cstdint>

#include "engine/tensor.h"
#include "kernels/cpu/parallel.h"

namespace aimc::detail {

// Chunk size for elementwise loops: depends on n only, so chunking never
// depends on the thread count.
inline std::int64_t elementwise_grain(std::int64_t n) { return cpu::grain_for(n, 8192); }

// out[i] = f(x[i]) for a float tensor (any layout); f is a generic callable
// taking float or double. The result is a new contiguous tensor.
template <class F>
Tensor map_unary(const Tensor& x_in, const char* op, F&& f) {
  check_cpu(x_in, op);
  const Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const std::int64_t n = x.numel();
    cpu::parallel_for(0, n, elementwise_grain(n), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) po[i] = f(px[i]);
    });
  });
  return out;
}

// out[i] = f(x[i], y[i]) for two float tensors of the same shape and dtype.
template <class F>
Tensor map_binary(const Tensor& x_in, const Tensor& y_in, const char* op, F&& f) {
  check_cpu(x_in, op);
  check_cpu(y_in, op);
  check_same_shape(x_in, y_in, op);
  check_dtype(y_in, x_in.dtype(), op);
  const Tensor x = x_in.detach().contiguous();
  const Tensor y = y_in.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    T* po = out.data<T>();
    const std::int64_t n = x.numel();
    cpu::parallel_for(0, n, elementwise_grain(n), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) po[i] = f(px[i], py[i]);
    });
  });
  return out;
}

// out[i] = f(x[i], y[i], z[i]) for three float tensors of the same shape and dtype.
template <class F>
Tensor map_ternary(const Tensor& x_in, const Tensor& y_in, const Tensor& z_in, const char* op, F&& f) {
  check_cpu(x_in, op);
  check_cpu(y_in, op);
  check_cpu(z_in, op);
  check_same_shape(x_in, y_in, op);
  check_same_shape(x_in, z_in, op);
  check_dtype(y_in, x_in.dtype(), op);
  check_dtype(z_in, x_in.dtype(), op);
  const Tensor x = x_in.detach().contiguous();
  const Tensor y = y_in.detach().contiguous();
  const Tensor z = z_in.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    const T* pz = z.data<T>();
    T* po = out.data<T>();
    const std::int64_t n = x.numel();
    cpu::parallel_for(0, n, elementwise_grain(n), [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) po[i] = f(px[i], py[i], pz[i]);
    });
  });
  return out;
}

// A contiguous copy of x broadcast (numpy rules) to `shape`; ShapeError if x
// does not broadcast to it. Used to expand reduced gradients.
Tensor expand_to(const Tensor& x, const Shape& shape);

}  // namespace aimc::detail
