// Pooling ops: max_pool, avg_pool (1 to 3 spatial dims) and global_avg_pool.
// The window loops live in kernels/cpu/pool.* and kernels/cuda/pool.cu; this file checks shapes and
// records the backward rules (max: scatter to the saved argmax; avg: spread
// evenly over the window, count_include_pad as PyTorch).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/elementwise.h"
#include "engine/ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/pool.h"

namespace aimc {
namespace {

struct PoolPlan {
  cpu::PoolGeometry geometry;
  std::int64_t planes = 0;
  Shape in_shape, out_shape;
};

PoolPlan plan_pool(const Tensor& x, const std::vector<std::int64_t>& kernel,
                   const std::vector<std::int64_t>& stride_in, const std::vector<std::int64_t>& padding_in,
                   const char* op) {
  op_device(op, {x});
  check_float(x, op);
  if (x.dim() < 3 || x.dim() > 5)
    throw ShapeError(std::string(op) + ": expected input [N, C, *spatial] with 1 to 3 spatial dims, got " +
                     shape_str(x.shape()));
  const std::size_t dims = static_cast<std::size_t>(x.dim() - 2);
  auto entries = [&](const std::vector<std::int64_t>& v, const std::vector<std::int64_t>& fallback,
                     const char* name) {
    if (v.empty()) return fallback;
    if (v.size() != dims)
      throw ShapeError(std::string(op) + ": " + name + " " + shape_str(v) + " does not match the " +
                       std::to_string(dims) + " spatial dims of input " + shape_str(x.shape()));
    return v;
  };
  if (kernel.size() != dims)
    throw ShapeError(std::string(op) + ": kernel " + shape_str(kernel) + " does not match the " +
                     std::to_string(dims) + " spatial dims of input " + shape_str(x.shape()));
  const std::vector<std::int64_t> stride = entries(stride_in, kernel, "stride");
  const std::vector<std::int64_t> padding = entries(padding_in, std::vector<std::int64_t>(dims, 0), "padding");

  PoolPlan p;
  p.geometry.spatial_dims = static_cast<int>(dims);
  p.planes = x.size(0) * x.size(1);
  p.in_shape = x.shape();
  p.out_shape = {x.size(0), x.size(1)};
  for (std::size_t d = 0; d < dims; ++d) {
    const std::int64_t in = x.size(static_cast<std::int64_t>(d) + 2);
    if (kernel[d] < 1)
      throw ConfigError(std::string(op) + ": kernel size " + std::to_string(kernel[d]) + " must be >= 1");
    if (stride[d] < 1) throw ConfigError(std::string(op) + ": stride " + std::to_string(stride[d]) + " must be >= 1");
    if (padding[d] < 0 || 2 * padding[d] > kernel[d])
      throw ConfigError(std::string(op) + ": padding " + std::to_string(padding[d]) + " must be in [0, kernel/2 = " +
                        std::to_string(kernel[d] / 2) + "]");
    if (in + 2 * padding[d] < kernel[d])
      throw ShapeError(std::string(op) + ": empty output along spatial dim " + std::to_string(d) + ": input " +
                       shape_str(x.shape()) + " with padding " + std::to_string(padding[d]) +
                       " is smaller than kernel " + std::to_string(kernel[d]));
    const std::int64_t out = (in + 2 * padding[d] - kernel[d]) / stride[d] + 1;
    p.geometry.input[d] = in;
    p.geometry.output[d] = out;
    p.geometry.kernel[d] = kernel[d];
    p.geometry.stride[d] = stride[d];
    p.geometry.padding[d] = padding[d];
    p.out_shape.push_back(out);
  }
  return p;
}

}  // namespace

Tensor max_pool(const Tensor& x, const std::vector<std::int64_t>& kernel, const std::vector<std::int64_t>& stride,
                const std::vector<std::int64_t>& padding) {
  const PoolPlan p = plan_pool(x, kernel, stride, padding, "max_pool");
  const Tensor xc = x.contiguous();
  if (xc.device().is_cuda()) {
    Tensor y = Tensor::empty(p.out_shape, xc.dtype(), xc.device());
    Tensor argmax = Tensor::empty(p.out_shape, DType::Int64, xc.device());
    cuda_kernels().max_pool_forward(p.geometry, p.planes, xc.data<float>(), y.data<float>(),
                                    argmax.data<std::int64_t>());
    return record(y, "max_pool", {xc}, [p, argmax](const Tensor& grad) {
      const Tensor gy = grad.contiguous();
      op_device("max_pool backward", {gy, argmax});
      Tensor gx = Tensor::empty(p.in_shape, gy.dtype(), gy.device());
      cuda_kernels().max_pool_backward(p.geometry, p.planes, gy.data<float>(), argmax.data<std::int64_t>(),
                                       gx.data<float>());
      return std::vector<Tensor>{gx};
    });
  }
  Tensor y = Tensor::empty(p.out_shape, xc.dtype());
  // Filled by the kernel (no zero-initialisation).
  std::shared_ptr<std::int64_t[]> argmax(new std::int64_t[static_cast<std::size_t>(y.numel())]);
  dispatch_float(xc.dtype(), "max_pool", [&](auto tag) {
    using T = decltype(tag);
    cpu::max_pool_forward(p.geometry, p.planes, xc.data<T>(), y.data<T>(), argmax.get());
  });
  return record(y, "max_pool", {xc}, [p, argmax](const Tensor& grad) {
    const Tensor gy = grad.contiguous();
    Tensor gx = Tensor::empty(p.in_shape, gy.dtype());
    dispatch_float(gy.dtype(), "max_pool backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::max_pool_backward(p.geometry, p.planes, gy.data<T>(), argmax.get(), gx.data<T>());
    });
    return std::vector<Tensor>{gx};
  });
}

Tensor avg_pool(const Tensor& x, const std::vector<std::int64_t>& kernel, const std::vector<std::int64_t>& stride,
                const std::vector<std::int64_t>& padding) {
  const PoolPlan p = plan_pool(x, kernel, stride, padding, "avg_pool");
  const Tensor xc = x.contiguous();
  if (xc.device().is_cuda()) {
    Tensor y = Tensor::empty(p.out_shape, xc.dtype(), xc.device());
    cuda_kernels().avg_pool_forward(p.geometry, p.planes, xc.data<float>(), y.data<float>());
    return record(y, "avg_pool", {xc}, [p](const Tensor& grad) {
      const Tensor gy = grad.contiguous();
      op_device("avg_pool backward", {gy});
      Tensor gx = Tensor::empty(p.in_shape, gy.dtype(), gy.device());
      cuda_kernels().avg_pool_backward(p.geometry, p.planes, gy.data<float>(), gx.data<float>());
      return std::vector<Tensor>{gx};
    });
  }
  Tensor y = Tensor::empty(p.out_shape, xc.dtype());
  dispatch_float(xc.dtype(), "avg_pool", [&](auto tag) {
    using T = decltype(tag);
    cpu::avg_pool_forward(p.geometry, p.planes, xc.data<T>(), y.data<T>());
  });
  return record(y, "avg_pool", {xc}, [p](const Tensor& grad) {
    const Tensor gy = grad.contiguous();
    Tensor gx = Tensor::empty(p.in_shape, gy.dtype());
    dispatch_float(gy.dtype(), "avg_pool backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::avg_pool_backward(p.geometry, p.planes, gy.data<T>(), gx.data<T>());
    });
    return std::vector<Tensor>{gx};
  });
}

Tensor global_avg_pool(const Tensor& x) {
  const Device device = op_device("global_avg_pool", {x});
  check_float(x, "global_avg_pool");
  if (x.dim() < 3 || x.dim() > 5)
    throw ShapeError("global_avg_pool: expected input [N, C, *spatial] with 1 to 3 spatial dims, got " +
                     shape_str(x.shape()));
  const Tensor xc = x.contiguous();
  const std::int64_t planes = xc.size(0) * xc.size(1);
  const std::int64_t area = xc.numel() / std::max<std::int64_t>(1, planes);
  if (device.is_cuda()) {
    Tensor y = Tensor::empty({xc.size(0), xc.size(1)}, xc.dtype(), device);
    cuda_kernels().engine_plane_mean(xc.data<float>(), planes, area, y.data<float>());
    return record(y, "global_avg_pool", {xc}, [in_shape = xc.shape(), area](const Tensor& grad) {
      // Every element of plane p gets gy[p] / area, divided as on the CPU.
      Shape plane_shape(in_shape.size(), 1);
      plane_shape[0] = in_shape[0];
      plane_shape[1] = in_shape[1];
      const Tensor share = detail::binary<engine_law::Binary::div>(
          grad.detach().contiguous().reshape(plane_shape),
          Tensor::full({}, static_cast<double>(area), grad.dtype(), grad.device()), "global_avg_pool backward");
      return std::vector<Tensor>{detail::expand_to(share, in_shape)};
    });
  }
  Tensor y = Tensor::empty({xc.size(0), xc.size(1)}, xc.dtype());
  const std::int64_t grain = cpu::grain_for(planes, std::max<std::int64_t>(1, 16384 / std::max<std::int64_t>(1, area)));
  dispatch_float(xc.dtype(), "global_avg_pool", [&](auto tag) {
    using T = decltype(tag);
    const T* src = xc.data<T>();
    T* dst = y.data<T>();
    cpu::parallel_for(0, planes, grain, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t p = p0; p < p1; ++p) {
        T total = 0;
        const T* plane = src + p * area;
        for (std::int64_t i = 0; i < area; ++i) total += plane[i];
        dst[p] = total / static_cast<T>(area);
      }
    });
  });
  return record(y, "global_avg_pool", {xc}, [in_shape = xc.shape(), planes, area, grain](const Tensor& grad) {
    const Tensor gy = grad.contiguous();
    Tensor gx = Tensor::empty(in_shape, gy.dtype());
    dispatch_float(gy.dtype(), "global_avg_pool backward", [&](auto tag) {
      using T = decltype(tag);
      const T* src = gy.data<T>();
      T* dst = gx.data<T>();
      cpu::parallel_for(0, planes, grain, [&](std::int64_t p0, std::int64_t p1) {
        for (std::int64_t p = p0; p < p1; ++p)
          std::fill(dst + p * area, dst + (p + 1) * area, src[p] / static_cast<T>(area));
      });
    });
    return std::vector<Tensor>{gx};
  });
}

}  // namespace aimc
