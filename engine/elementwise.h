// Internal helpers for writing elementwise ops and their backward rules:
// unary<K> and binary<K> run the law K of kernels/engine/elementwise_law.h on
// the inputs' device (CPU loops or the CUDA kernels, through the dispatch
// seam of engine/dispatch.h); map_* are CPU-only maps for callables that
// have no law. None of these record autograd nodes; ops call them for forward
// values and inside backward lambdas.
#pragma once

#include <cstdint>

#include "engine/dispatch.h"
#include "engine/tensor.h"
#include "kernels/cuda/backend.h"
#include "kernels/engine/elementwise_law.h"
#include "kernels/cpu/parallel.h"

namespace aimc::detail {

// Chunk size for elementwise loops: depends on n only, so chunking never
// depends on the thread count.
inline std::int64_t elementwise_grain(std::int64_t n) { return cpu::grain_for(n, 8192); }

// out[i] = f(x[i]) for a float tensor (any layout); f is a generic callable
// taking float or double. The result is a new contiguous tensor.
template <class F>
Tensor map_unary(const Tensor& x_in, const char* op, F&& f) {
  op_device(op, {x_in});
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
  op_device(op, {x_in, y_in});
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
  op_device("map_ternary", {x_in, y_in, z_in});
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

// A contiguous copy of a float32 CUDA tensor of any layout (Tensor::contiguous).
Tensor cuda_contiguous(const Tensor& x);

// dst (a float32 CUDA view of any layout) = src (same shape) element by
// element: copy_ into a slice, concat.
void cuda_assign(const Tensor& src, Tensor& dst);

// out = binary<K>(a, b; p) with numpy broadcasting, on the inputs' device;
// `op` names the op for the dispatch table and errors (engine/ops_elementwise.cpp).
template <engine_law::Binary K>
Tensor binary(const Tensor& a, const Tensor& b, const char* op, double p = 0);

// out = unary<K>(x; p), a new contiguous tensor on x's device.
template <engine_law::Unary K>
Tensor unary(const Tensor& x_in, const char* op, double p = 0) {
  const Device device = op_device(op, {x_in});
  if (device.is_cuda()) {
    const Tensor x = x_in.detach().contiguous();
    Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
    cuda_kernels().engine_unary(K, p, x.data<float>(), out.data<float>(), static_cast<std::size_t>(x.numel()));
    return out;
  }
  return map_unary(x_in, op, [p](auto v) { return engine_law::unary<K>(v, p); });
}

}  // namespace aimc::detail
