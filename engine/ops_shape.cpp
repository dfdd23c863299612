// Shape ops: reshape, flatten, transpose, permute, slice, concat.
// reshape of contiguous data, transpose and slice are views (no copy).
#include <cstring>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/ops.h"
#include "engine/strided.h"
#include "kernels/cuda/backend.h"

namespace aimc {
namespace {

Tensor make_view(const Tensor& x, Shape shape, Shape strides, std::int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.storage();
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = x.dtype();
  return Tensor(std::move(impl));
}

// concat's values on CUDA: with the concat dim moved to the front (permute, a
// contiguous gather) the inputs lie one after another in memory, so device
// copies place them; the result is moved back. Copies only: the same bits as
// the CPU.
Tensor cuda_concat_values(const std::vector<Tensor>& xs, std::int64_t d, const Shape& shape) {
  std::vector<std::int64_t> order{d}, inverse(shape.size());
  for (std::int64_t k = 0; k < std::int64_t(shape.size()); ++k)
    if (k != d) order.push_back(k);
  Shape front_shape;
  for (std::size_t i = 0; i < order.size(); ++i) {
    front_shape.push_back(shape[order[i]]);
    inverse[order[i]] = std::int64_t(i);
  }
  Tensor front = Tensor::empty(front_shape, xs[0].dtype(), xs[0].device());
  char* dst = static_cast<char*>(front.raw_data());
  for (const Tensor& t : xs) {
    const Tensor p = d == 0 ? t.detach().contiguous() : permute(t.detach(), order);
    const std::size_t bytes = std::size_t(p.numel()) * dtype_size(p.dtype());
    if (bytes > 0) cuda::backend().copy_device_to_device(dst, p.raw_data(), bytes);
    dst += bytes;
  }
  return d == 0 ? front : permute(front, inverse);
}

}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape_in) {
  Shape shape = shape_in;
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw ShapeError("reshape: more than one -1 in " + shape_str(shape_in));
      infer = static_cast<std::int64_t>(i);
    } else if (shape[i] < 0) {
      throw ShapeError("reshape: negative size in " + shape_str(shape_in));
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || x.numel() % known != 0)
      throw ShapeError("reshape: cannot reshape " + shape_str(x.shape()) + " into " + shape_str(shape_in));
    shape[infer] = x.numel() / known;
  }
  if (shape_numel(shape) != x.numel())
    throw ShapeError("reshape: cannot reshape " + shape_str(x.shape()) + " into " + shape_str(shape_in));
  if (static_cast<int>(shape.size()) > kMaxDims)
    throw ShapeError("reshape: at most 5 dims, got " + shape_str(shape_in));
  if (shape == x.shape()) return x;
  Tensor src = x.contiguous();
  Tensor out = make_view(src, shape, contiguous_strides(shape), src.offset());
  return record(out, "reshape", {src}, [in_shape = src.shape()](const Tensor& g) {
    return std::vector<Tensor>{g.contiguous().reshape(in_shape)};
  });
}

Tensor flatten(const Tensor& x, std::int64_t start_dim, std::int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  const std::int64_t s = normalize_dim(start_dim, x.dim(), "flatten");
  const std::int64_t e = normalize_dim(end_dim, x.dim(), "flatten");
  if (s > e) throw ShapeError("flatten: start_dim after end_dim");
  Shape shape;
  for (std::int64_t d = 0; d < s; ++d) shape.push_back(x.size(d));
  std::int64_t m = 1;
  for (std::int64_t d = s; d <= e; ++d) m *= x.size(d);
  shape.push_back(m);
  for (std::int64_t d = e + 1; d < x.dim(); ++d) shape.push_back(x.size(d));
  return reshape(x, shape);
}

Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1) {
  const std::int64_t a = normalize_dim(d0, x.dim(), "transpose");
  const std::int64_t b = normalize_dim(d1, x.dim(), "transpose");
  Shape shape = x.shape(), strides = x.strides();
  std::swap(shape[a], shape[b]);
  std::swap(strides[a], strides[b]);
  Tensor out = make_view(x, shape, strides, x.offset());
  return record(out, "transpose", {x}, [a, b](const Tensor& g) {
    return std::vector<Tensor>{transpose(g, a, b)};
  });
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& order) {
  if (static_cast<std::int64_t>(order.size()) != x.dim())
    throw ShapeError("permute: order has " + std::to_string(order.size()) + " entries for a " +
                     std::to_string(x.dim()) + "-D tensor");
  Shape shape(order.size()), strides(order.size());
  std::vector<std::int64_t> inverse(order.size(), -1);
  for (std::size_t i = 0; i < order.size(); ++i) {
    const std::int64_t d = normalize_dim(order[i], x.dim(), "permute");
    if (inverse[d] != -1) throw ShapeError("permute: repeated dim " + std::to_string(d));
    inverse[d] = static_cast<std::int64_t>(i);
    shape[i] = x.size(d);
    strides[i] = x.strides()[d];
  }
  Tensor out = make_view(x.detach(), shape, strides, x.offset()).contiguous();
  return record(out, "permute", {x}, [inverse](const Tensor& g) {
    return std::vector<Tensor>{permute(g, inverse)};
  });
}

Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end) {
  const std::int64_t d = normalize_dim(dim, x.dim(), "slice");
  const std::int64_t n = x.size(d);
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (start < 0 || end > n || start > end)
    throw ShapeError("slice: [" + std::to_string(start) + ", " + std::to_string(end) + ") out of range for dim " +
                     std::to_string(d) + " of " + shape_str(x.shape()));
  Shape shape = x.shape();
  shape[d] = end - start;
  Tensor out = make_view(x, shape, x.strides(), x.offset() + start * x.strides()[d]);
  return record(out, "slice", {x}, [d, start, end, in_shape = x.shape(), dtype = x.dtype(),
                                     device = x.device()](const Tensor& g) {
    if (device.is_cuda()) {
      // A strided CUDA view cannot be written (copy_): zeros before and after g, concatenated.
      std::vector<Tensor> parts;
      Shape before = in_shape, after = in_shape;
      before[d] = start;
      after[d] = in_shape[d] - end;
      if (start > 0) parts.push_back(Tensor::zeros(before, dtype, device));
      parts.push_back(g);
      if (after[d] > 0) parts.push_back(Tensor::zeros(after, dtype, device));
      return std::vector<Tensor>{parts.size() == 1 ? g : concat(parts, d)};
    }
    Tensor full = Tensor::zeros(in_shape, dtype, device);
    full.slice(d, start, end).copy_(g);
    return std::vector<Tensor>{full};
  });
}

Tensor concat(const std::vector<Tensor>& xs, std::int64_t dim) {
  if (xs.empty()) throw ShapeError("concat: no tensors");
  for (const Tensor& t : xs) op_device("concat", {xs[0], t});
  const std::int64_t d = normalize_dim(dim, xs[0].dim(), "concat");
  Shape shape = xs[0].shape();
  std::int64_t total = 0;
  for (const auto& t : xs) {
    if (t.dim() != xs[0].dim() || t.dtype() != xs[0].dtype())
      throw ShapeError("concat: " + shape_str(t.shape()) + " does not match " + shape_str(xs[0].shape()));
    for (std::int64_t k = 0; k < t.dim(); ++k)
      if (k != d && t.size(k) != shape[k])
        throw ShapeError("concat along dim " + std::to_string(d) + ": " + shape_str(t.shape()) + " vs " +
                         shape_str(xs[0].shape()));
    total += t.size(d);
  }
  shape[d] = total;
  const bool on_cuda = xs[0].device().is_cuda();
  Tensor out = on_cuda ? cuda_concat_values(xs, d, shape) : Tensor::empty(shape, xs[0].dtype(), xs[0].device());
  std::vector<std::int64_t> starts;
  std::int64_t at = 0;
  for (const auto& t : xs) {
    starts.push_back(at);
    if (!on_cuda) out.slice(d, at, at + t.size(d)).copy_(t);
    at += t.size(d);
  }
  std::vector<std::int64_t> sizes;
  for (const auto& t : xs) sizes.push_back(t.size(d));
  return record(out, "concat", xs, [d, starts, sizes](const Tensor& g) {
    std::vector<Tensor> grads;
    for (std::size_t i = 0; i < starts.size(); ++i) grads.push_back(g.slice(d, starts[i], starts[i] + sizes[i]));
    return grads;
  });
}

}  // namespace aimc
