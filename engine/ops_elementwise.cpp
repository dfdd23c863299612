// Elementwise ops with numpy broadcasting (add, sub, mul, div) and unary
// maps (scalar add/mul, neg, exp, log, sqrt, square, abs, pow).
//
// Binary ops run one strided kernel: both inputs are viewed through the
// broadcast output shape (stride 0 on broadcast dims), size-1 dims are dropped
// and adjacent dims that are contiguous in both inputs are merged. That turns
// same-shape contiguous inputs into one flat loop, the bias add [N, C] + [C]
// into rows with a contiguous inner loop, and everything else (scalars,
// [3, 1] + [1, 4], transposed views) into rows with strided inner loops; no
// input is copied. Backward rules return gradients in the broadcast shape; the
// autograd engine sums them back to the input shapes.
#include <cmath>

#include "engine/autograd.h"
#include "engine/elementwise.h"
#include "engine/ops.h"

namespace aimc {
namespace {

Shape broadcast_shapes_for(const Shape& a, const Shape& b, const char* op) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank, 1);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      throw ShapeError(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                       " cannot be broadcast together (dim " + std::to_string(i) + ": " + std::to_string(da) +
                       " vs " + std::to_string(db) + ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Element strides of t viewed through a broadcast to `out` (0 on broadcast dims).
Shape broadcast_strides(const Tensor& t, const Shape& out) {
  const std::size_t lead = out.size() - t.shape().size();
  Shape s(out.size(), 0);
  for (std::size_t d = lead; d < out.size(); ++d)
    s[d] = t.shape()[d - lead] == 1 ? 0 : t.strides()[d - lead];
  return s;
}

// Iteration space of a binary op after dropping size-1 dims and merging dims
// that are contiguous with their neighbour in both inputs.
struct Layout {
  Shape size, stride_a, stride_b;
};

Layout coalesce(const Shape& out, const Shape& sa, const Shape& sb) {
  Layout l;
  for (std::size_t d = 0; d < out.size(); ++d) {
    if (out[d] == 1) continue;
    if (!l.size.empty() && l.stride_a.back() == sa[d] * out[d] && l.stride_b.back() == sb[d] * out[d]) {
      l.size.back() *= out[d];
      l.stride_a.back() = sa[d];
      l.stride_b.back() = sb[d];
    } else {
      l.size.push_back(out[d]);
      l.stride_a.push_back(sa[d]);
      l.stride_b.push_back(sb[d]);
    }
  }
  if (l.size.empty()) l = Layout{{1}, {0}, {0}};
  return l;
}

// out (contiguous, shape `shape`) = f(a, b) with a and b broadcast to shape.
template <class T, class F>
void broadcast_loop(const Tensor& a, const Tensor& b, const Shape& shape, T* out, F f) {
  const std::int64_t n = shape_numel(shape);
  if (n == 0) return;
  const Layout l = coalesce(shape, broadcast_strides(a, shape), broadcast_strides(b, shape));
  const T* pa0 = a.data<T>();
  const T* pb0 = b.data<T>();
  const int rank = static_cast<int>(l.size.size());
  const std::int64_t inner = l.size.back();
  const std::int64_t ia = l.stride_a.back(), ib = l.stride_b.back();
  // Work units: blocks of at most kBlock elements of one row.
  constexpr std::int64_t kBlock = 8192;
  const std::int64_t rows = n / inner;
  const std::int64_t blocks_per_row = (inner + kBlock - 1) / kBlock;
  const std::int64_t units = rows * blocks_per_row;
  const std::int64_t unit_len = std::min(inner, kBlock);
  const std::int64_t grain = cpu::grain_for(units, std::max<std::int64_t>(1, kBlock / unit_len));
  cpu::parallel_for(0, units, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t u = lo; u < hi; ++u) {
      const std::int64_t r = u / blocks_per_row;
      const std::int64_t j0 = (u % blocks_per_row) * kBlock;
      const std::int64_t j1 = std::min(inner, j0 + kBlock);
      std::int64_t rem = r, oa = 0, ob = 0;
      for (int d = rank - 2; d >= 0; --d) {
        const std::int64_t idx = rem % l.size[d];
        rem /= l.size[d];
        oa += idx * l.stride_a[d];
        ob += idx * l.stride_b[d];
      }
      const T* pa = pa0 + oa + j0 * ia;
      const T* pb = pb0 + ob + j0 * ib;
      T* po = out + r * inner + j0;
      const std::int64_t len = j1 - j0;
      if (ia == 1 && ib == 1) {
        for (std::int64_t j = 0; j < len; ++j) po[j] = f(pa[j], pb[j]);
      } else if (ia == 1 && ib == 0) {
        const T bv = *pb;
        for (std::int64_t j = 0; j < len; ++j) po[j] = f(pa[j], bv);
      } else if (ia == 0 && ib == 1) {
        const T av = *pa;
        for (std::int64_t j = 0; j < len; ++j) po[j] = f(av, pb[j]);
      } else {
        for (std::int64_t j = 0; j < len; ++j) po[j] = f(pa[j * ia], pb[j * ib]);
      }
    }
  });
}

Device check_binary(const Tensor& a, const Tensor& b, const char* op) {
  const Device device = op_device(op, {a, b});
  if (a.dtype() != b.dtype())
    throw ValueError(std::string(op) + ": inputs have different dtypes, " + dtype_name(a.dtype()) + " vs " +
                     dtype_name(b.dtype()));
  return device;
}

// The CUDA kernel's view of a and b broadcast to `shape` (coalesced as on the CPU).
engine_law::StridedIndex strided_index(const Tensor& a, const Tensor& b, const Shape& shape) {
  const Layout l = coalesce(shape, broadcast_strides(a, shape), broadcast_strides(b, shape));
  engine_law::StridedIndex index;
  index.rank = static_cast<int>(l.size.size());
  for (int d = 0; d < index.rank; ++d) {
    index.size[d] = l.size[d];
    index.stride_a[d] = l.stride_a[d];
    index.stride_b[d] = l.stride_b[d];
  }
  return index;
}

// out (contiguous, `shape`) = binary<kind>(a, b; p) on the GPU.
Tensor cuda_broadcast(engine_law::Binary kind, double p, const Tensor& a, const Tensor& b, const Shape& shape) {
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  cuda_kernels().engine_binary(kind, p, a.data<float>(), b.data<float>(), strided_index(a, b, shape),
                               out.data<float>());
  return out;
}

}  // namespace

Shape broadcast_shapes(const Shape& a, const Shape& b) { return broadcast_shapes_for(a, b, "broadcast"); }

namespace detail {
template <engine_law::Binary K>
Tensor binary(const Tensor& a, const Tensor& b, const char* op, double p) {
  const Device device = check_binary(a, b, op);
  const Shape shape = broadcast_shapes_for(a.shape(), b.shape(), op);
  if (device.is_cuda()) return cuda_broadcast(K, p, a, b, shape);
  Tensor out = Tensor::empty(shape, a.dtype());
  dispatch_float(a.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    broadcast_loop<T>(a, b, shape, out.data<T>(), [p](T x, T y) { return engine_law::binary<K>(x, y, p); });
  });
  return out;
}

#define AIMC_INSTANTIATE_BINARY(name) \
  template Tensor binary<engine_law::Binary::name>(const Tensor&, const Tensor&, const char*, double);
AIMC_INSTANTIATE_BINARY(first) AIMC_INSTANTIATE_BINARY(add) AIMC_INSTANTIATE_BINARY(sub)
AIMC_INSTANTIATE_BINARY(mul) AIMC_INSTANTIATE_BINARY(div) AIMC_INSTANTIATE_BINARY(neg_mul)
AIMC_INSTANTIATE_BINARY(sqrt_grad) AIMC_INSTANTIATE_BINARY(square_grad) AIMC_INSTANTIATE_BINARY(abs_grad)
AIMC_INSTANTIATE_BINARY(pow_grad) AIMC_INSTANTIATE_BINARY(relu_grad) AIMC_INSTANTIATE_BINARY(leaky_relu_grad)
AIMC_INSTANTIATE_BINARY(sigmoid_grad) AIMC_INSTANTIATE_BINARY(tanh_grad) AIMC_INSTANTIATE_BINARY(erf_grad)
AIMC_INSTANTIATE_BINARY(gelu_grad) AIMC_INSTANTIATE_BINARY(mse_grad) AIMC_INSTANTIATE_BINARY(dropout_mask)
#undef AIMC_INSTANTIATE_BINARY

Tensor cuda_contiguous(const Tensor& x) {
  if (x.dtype() != DType::Float32)
    throw DeviceError(std::string("contiguous: a ") + dtype_name(x.dtype()) +
                      " CUDA tensor of this layout cannot be copied yet (float32 only)");
  return cuda_broadcast(engine_law::Binary::first, 0, x, x, x.shape());
}

void cuda_assign(const Tensor& src, Tensor& dst) {
  if (dst.dtype() != DType::Float32 || src.dtype() != DType::Float32)
    throw DeviceError(std::string("copy_: into a ") + dtype_name(dst.dtype()) +
                      " CUDA view of this layout is not supported (float32 only)");
  if (dst.numel() == 0) return;
  cuda_kernels().engine_strided_assign(src.data<float>(), strided_index(dst, src, dst.shape()), dst.data<float>());
}

Tensor expand_to(const Tensor& x, const Shape& shape) {
  const Device device = op_device("expand_to", {x});
  const Shape b = broadcast_shapes_for(x.shape(), shape, "expand_to");
  if (b != shape)
    throw ShapeError("expand_to: " + shape_str(x.shape()) + " does not broadcast to " + shape_str(shape));
  if (device.is_cuda()) return cuda_broadcast(engine_law::Binary::first, 0, x, x, shape);
  Tensor out = Tensor::empty(shape, x.dtype());
  dispatch_float(x.dtype(), "expand_to", [&](auto tag) {
    using T = decltype(tag);
    broadcast_loop<T>(x, x, shape, out.data<T>(), [](T v, T) { return v; });
  });
  return out;
}
}  // namespace detail

namespace {
using detail::binary;
using detail::unary;
using engine_law::Binary;
using engine_law::Unary;
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary<Binary::add>(a, b, "add");
  return record(out, "add", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary<Binary::sub>(a, b, "sub");
  return record(out, "sub", {a, b}, [need_b = b.requires_grad()](const Tensor& g) {
    return std::vector<Tensor>{g, need_b ? neg(g) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary<Binary::mul>(a, b, "mul");
  if (!any_requires_grad({a, b})) return out;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(out, "mul", {a, b}, [ad = a.detach(), bd = b.detach(), need_a, need_b](const Tensor& g) {
    return std::vector<Tensor>{need_a ? binary<Binary::mul>(g, bd, "mul backward") : Tensor(),
                               need_b ? binary<Binary::mul>(g, ad, "mul backward") : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary<Binary::div>(a, b, "div");
  if (!any_requires_grad({a, b})) return out;
  const bool need_b = b.requires_grad();
  // d/da = g / b; d/db = -g a / b^2 = -(g / b) * out.
  return record(out, "div", {a, b}, [bd = b.detach(), od = out.detach(), need_b](const Tensor& g) {
    Tensor ga = binary<Binary::div>(g, bd, "div backward");
    Tensor gb;
    if (need_b) gb = binary<Binary::neg_mul>(ga, od, "div backward");
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor add_scalar(const Tensor& a, double s) {
  Tensor out = unary<Unary::add_scalar>(a, "add_scalar", s);
  return record(out, "add_scalar", {a}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor mul_scalar(const Tensor& a, double s) {
  Tensor out = unary<Unary::mul_scalar>(a, "mul_scalar", s);
  return record(out, "mul_scalar", {a}, [s](const Tensor& g) {
    return std::vector<Tensor>{unary<Unary::mul_scalar>(g, "mul_scalar backward", s)};
  });
}

Tensor neg(const Tensor& a) {
  Tensor out = unary<Unary::neg>(a, "neg");
  return record(out, "neg", {a}, [](const Tensor& g) {
    return std::vector<Tensor>{unary<Unary::neg>(g, "neg backward")};
  });
}

Tensor exp(const Tensor& a) {
  Tensor out = unary<Unary::exp>(a, "exp");
  return record(out, "exp", {a}, [od = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::mul>(g, od, "exp backward")};
  });
}

Tensor log(const Tensor& a) {
  Tensor out = unary<Unary::log>(a, "log");
  return record(out, "log", {a}, [ad = a.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::div>(g, ad, "log backward")};
  });
}

Tensor sqrt(const Tensor& a) {
  Tensor out = unary<Unary::sqrt>(a, "sqrt");
  return record(out, "sqrt", {a}, [od = out.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::sqrt_grad>(g, od, "sqrt backward")};
  });
}

Tensor square(const Tensor& a) {
  Tensor out = unary<Unary::square>(a, "square");
  return record(out, "square", {a}, [ad = a.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::square_grad>(g, ad, "square backward")};
  });
}

Tensor abs(const Tensor& a) {
  Tensor out = unary<Unary::abs>(a, "abs");
  // d|x|/dx = sign(x), 0 at 0 (as PyTorch); NaN stays NaN.
  return record(out, "abs", {a}, [ad = a.detach()](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::abs_grad>(g, ad, "abs backward")};
  });
}

Tensor pow_scalar(const Tensor& a, double p) {
  Tensor out = unary<Unary::pow_scalar>(a, "pow_scalar", p);
  return record(out, "pow_scalar", {a}, [ad = a.detach(), p](const Tensor& g) {
    return std::vector<Tensor>{binary<Binary::pow_grad>(g, ad, "pow_scalar backward", p)};
  });
}

}  // namespace aimc
