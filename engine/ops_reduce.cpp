// Reductions (sum, mean), softmax / log_softmax along any dim, and the losses
// cross_entropy and mse_loss, plus argmax_rows.
//
// Sums accumulate in double for both float types. Every sum adds its terms in
// an order fixed by the shape alone (fixed chunks combined in chunk order), so
// results are bitwise identical for any thread count.
#include <cmath>
#include <limits>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/elementwise.h"
#include "engine/ops.h"

namespace aimc {
namespace {

constexpr std::int64_t kSumGrain = 16384;

// sum_{i < n} term(i) in double with a fixed partition into chunks.
template <class F>
double deterministic_sum(std::int64_t n, F term) {
  auto run = [&](std::int64_t lo, std::int64_t hi) {
    double acc[4] = {0, 0, 0, 0};
    std::int64_t i = lo;
    for (; i + 4 <= hi; i += 4) {
      acc[0] += term(i);
      acc[1] += term(i + 1);
      acc[2] += term(i + 2);
      acc[3] += term(i + 3);
    }
    for (; i < hi; ++i) acc[0] += term(i);
    return (acc[0] + acc[1]) + (acc[2] + acc[3]);
  };
  const std::int64_t grain = cpu::grain_for(n, kSumGrain);
  if (n <= grain) return run(0, n);
  const std::int64_t chunks = (n + grain - 1) / grain;
  std::vector<double> partial(chunks, 0.0);
  cpu::parallel_for(0, n, grain, [&](std::int64_t lo, std::int64_t hi) { partial[lo / grain] = run(lo, hi); });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

// out[o, i] = sum_r x[o, r, i] for contiguous x of shape [outer, r_size, inner].
template <class T>
void sum_middle(const T* x, T* out, std::int64_t outer, std::int64_t r_size, std::int64_t inner) {
  if (outer * inner == 0) return;
  if (inner == 1) {
    const std::int64_t grain = cpu::grain_for(outer, std::max<std::int64_t>(1, kSumGrain / std::max<std::int64_t>(r_size, 1)));
    cpu::parallel_for(0, outer, grain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t o = lo; o < hi; ++o) {
        const T* row = x + o * r_size;
        out[o] = static_cast<T>(deterministic_sum(r_size, [row](std::int64_t i) { return double(row[i]); }));
      }
    });
    return;
  }
  if (outer == 1 && r_size * inner >= 4 * kSumGrain && inner <= kSumGrain) {
    // Column sums of a tall matrix (bias gradients): fixed chunks of rows give
    // partial column sums, added in chunk order.
    const std::int64_t r_grain = cpu::grain_for(r_size, std::max<std::int64_t>(1, kSumGrain / inner));
    const std::int64_t chunks = (r_size + r_grain - 1) / r_grain;
    std::vector<double> partial(chunks * inner, 0.0);
    cpu::parallel_for(0, r_size, r_grain, [&](std::int64_t lo, std::int64_t hi) {
      double* acc = partial.data() + (lo / r_grain) * inner;
      for (std::int64_t r = lo; r < hi; ++r) {
        const T* p = x + r * inner;
        for (std::int64_t j = 0; j < inner; ++j) acc[j] += double(p[j]);
      }
    });
    for (std::int64_t j = 0; j < inner; ++j) {
      double s = 0;
      for (std::int64_t k = 0; k < chunks; ++k) s += partial[k * inner + j];
      out[j] = static_cast<T>(s);
    }
    return;
  }
  // Column sums: each output adds its r terms in order; blocks of columns run in parallel.
  constexpr std::int64_t kBlock = 1024;
  const std::int64_t blocks = (inner + kBlock - 1) / kBlock;
  const std::int64_t units = outer * blocks;
  const std::int64_t work = std::max<std::int64_t>(1, r_size * std::min(inner, kBlock));
  const std::int64_t grain = cpu::grain_for(units, std::max<std::int64_t>(1, kSumGrain / work));
  cpu::parallel_for(0, units, grain, [&](std::int64_t lo, std::int64_t hi) {
    double acc[kBlock];
    for (std::int64_t u = lo; u < hi; ++u) {
      const std::int64_t o = u / blocks;
      const std::int64_t j0 = (u % blocks) * kBlock;
      const std::int64_t len = std::min(inner, j0 + kBlock) - j0;
      for (std::int64_t j = 0; j < len; ++j) acc[j] = 0;
      for (std::int64_t r = 0; r < r_size; ++r) {
        const T* p = x + (o * r_size + r) * inner + j0;
        for (std::int64_t j = 0; j < len; ++j) acc[j] += double(p[j]);
      }
      T* po = out + o * inner + j0;
      for (std::int64_t j = 0; j < len; ++j) po[j] = static_cast<T>(acc[j]);
    }
  });
}

// Marks the reduced dims; ShapeError on a repeated or out-of-range dim.
std::vector<bool> reduced_dims(const Tensor& x, const std::vector<std::int64_t>& axes, const char* op) {
  std::vector<bool> reduce(x.dim(), false);
  for (std::int64_t a : axes) {
    const std::int64_t d = normalize_dim(a, x.dim(), op);
    if (reduce[d]) throw ShapeError(std::string(op) + ": dim " + std::to_string(a) + " repeated in the axes");
    reduce[d] = true;
  }
  return reduce;
}

// Layout of a tensor around one dim: [outer, size, inner].
struct DimLayout {
  std::int64_t outer = 1, size = 1, inner = 1;
};

DimLayout dim_layout(const Shape& s, std::int64_t d) {
  DimLayout l;
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(s.size()); ++k) {
    if (k < d) l.outer *= s[k];
    else if (k == d) l.size = s[k];
    else l.inner *= s[k];
  }
  return l;
}

// Calls f(base) for every line along the dim (elements base + c * inner).
template <class F>
void for_each_line(const DimLayout& l, F f) {
  const std::int64_t lines = l.outer * l.inner;
  const std::int64_t grain = cpu::grain_for(lines, std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(l.size, 1)));
  cpu::parallel_for(0, lines, grain, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t k = lo; k < hi; ++k) f((k / l.inner) * l.size * l.inner + k % l.inner);
  });
}

enum class SoftmaxKind { Prob, Log };

Tensor softmax_forward(const Tensor& x_in, std::int64_t dim, SoftmaxKind kind, const char* op) {
  const Device device = op_device(op, {x_in});
  const Tensor x = x_in.detach().contiguous();
  const DimLayout l = dim_layout(x.shape(), dim);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
  if (device.is_cuda()) {
    cuda_kernels().engine_softmax(kind == SoftmaxKind::Log, x.data<float>(), l.outer, l.size, l.inner,
                                  out.data<float>());
    return out;
  }
  dispatch_float(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const std::int64_t c_size = l.size, step = l.inner;
    for_each_line(l, [&](std::int64_t base) {
      const T* xs = px + base;
      T* ys = po + base;
      T m = -std::numeric_limits<T>::infinity();
      for (std::int64_t c = 0; c < c_size; ++c) m = std::max(m, xs[c * step]);
      if (std::isinf(m) && m < 0) m = 0;  // all -inf: avoid inf - inf
      double s = 0;
      for (std::int64_t c = 0; c < c_size; ++c) {
        const T e = std::exp(xs[c * step] - m);
        if (kind == SoftmaxKind::Prob) ys[c * step] = e;
        s += e;
      }
      if (kind == SoftmaxKind::Prob) {
        const T inv = static_cast<T>(1.0 / s);
        for (std::int64_t c = 0; c < c_size; ++c) ys[c * step] *= inv;
      } else {
        const T shift = m + static_cast<T>(std::log(s));
        for (std::int64_t c = 0; c < c_size; ++c) ys[c * step] = xs[c * step] - shift;
      }
    });
  });
  return out;
}

// Backward of softmax (y = probabilities) or log_softmax (y = log-probabilities).
Tensor softmax_backward(const Tensor& g_in, const Tensor& y, std::int64_t dim, SoftmaxKind kind) {
  const Device device = op_device(kind == SoftmaxKind::Log ? "log_softmax backward" : "softmax backward", {g_in, y});
  const Tensor g = g_in.detach().contiguous();
  const DimLayout l = dim_layout(y.shape(), dim);
  Tensor gx = Tensor::empty(y.shape(), y.dtype(), device);
  if (device.is_cuda()) {
    cuda_kernels().engine_softmax_backward(kind == SoftmaxKind::Log, g.data<float>(), y.data<float>(), l.outer,
                                           l.size, l.inner, gx.data<float>());
    return gx;
  }
  dispatch_float(y.dtype(), "softmax backward", [&](auto tag) {
    using T = decltype(tag);
    const T* pg = g.data<T>();
    const T* py = y.data<T>();
    T* pgx = gx.data<T>();
    const std::int64_t c_size = l.size, step = l.inner;
    for_each_line(l, [&](std::int64_t base) {
      const T* gs = pg + base;
      const T* ys = py + base;
      T* out = pgx + base;
      double s = 0;
      if (kind == SoftmaxKind::Prob) {
        for (std::int64_t c = 0; c < c_size; ++c) s += double(gs[c * step]) * double(ys[c * step]);
        const T dot = static_cast<T>(s);
        for (std::int64_t c = 0; c < c_size; ++c) out[c * step] = ys[c * step] * (gs[c * step] - dot);
      } else {
        for (std::int64_t c = 0; c < c_size; ++c) s += double(gs[c * step]);
        const T total = static_cast<T>(s);
        for (std::int64_t c = 0; c < c_size; ++c) out[c * step] = gs[c * step] - std::exp(ys[c * step]) * total;
      }
    });
  });
  return gx;
}

Tensor softmax_op(const Tensor& x, std::int64_t dim_in, SoftmaxKind kind, const char* op) {
  const std::int64_t dim = normalize_dim(dim_in, x.dim(), op);
  Tensor out = softmax_forward(x, dim, kind, op);
  return record(out, op, {x}, [od = out.detach(), dim, kind](const Tensor& g) {
    return std::vector<Tensor>{softmax_backward(g, od, dim, kind)};
  });
}

// sum_middle on the GPU: out[o, i] = Σ_r x[o, r, i] for contiguous x, the
// terms in the CPU's order (four running sums when inner == 1, as
// deterministic_sum adds one chunk; in order otherwise).
void cuda_sum_middle(const float* x, float* out, std::int64_t outer, std::int64_t r_size, std::int64_t inner) {
  engine_law::ReduceIndex index;
  index.kept_rank = 2;
  index.kept_size[0] = outer;
  index.kept_stride[0] = r_size * inner;
  index.kept_size[1] = inner;
  index.kept_stride[1] = 1;
  index.reduced_rank = 1;
  index.reduced_size[0] = r_size;
  index.reduced_stride[0] = inner;
  index.four_way = inner == 1;
  cuda_kernels().engine_sum(x, index, out);
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const Device device = op_device("sum", {x});
  check_float(x, "sum");
  if (axes.empty()) return x;  // nothing to reduce
  const std::vector<bool> reduce = reduced_dims(x, axes, "sum");
  const std::int64_t rank = x.dim();
  Shape keep_shape = x.shape(), out_shape;
  for (std::int64_t d = 0; d < rank; ++d) {
    if (reduce[d]) keep_shape[d] = 1;
    else out_shape.push_back(x.size(d));
  }
  // Reduce each run of adjacent reduced dims, last run first.
  Tensor cur = x.detach().contiguous();
  Shape cur_shape = x.shape();
  for (std::int64_t e = rank; e > 0;) {
    if (!reduce[e - 1]) { --e; continue; }
    std::int64_t s = e - 1;
    while (s > 0 && reduce[s - 1]) --s;
    std::int64_t outer = 1, r_size = 1, inner = 1;
    for (std::int64_t k = 0; k < rank; ++k) (k < s ? outer : k < e ? r_size : inner) *= cur_shape[k];
    for (std::int64_t k = s; k < e; ++k) cur_shape[k] = 1;
    Tensor next = Tensor::empty(cur_shape, x.dtype(), device);
    if (device.is_cuda()) cuda_sum_middle(cur.data<float>(), next.data<float>(), outer, r_size, inner);
    else dispatch_float(x.dtype(), "sum", [&](auto tag) {
      using T = decltype(tag);
      sum_middle<T>(cur.data<T>(), next.data<T>(), outer, r_size, inner);
    });
    cur = next;
    e = s;
  }
  Tensor out = cur.reshape(keepdim ? keep_shape : out_shape);
  return record(out, "sum", {x}, [keep_shape, in_shape = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{detail::expand_to(g.detach().contiguous().reshape(keep_shape), in_shape)};
  });
}

Tensor sum(const Tensor& x) {
  if (x.dim() == 0) {
    op_device("sum", {x});
    check_float(x, "sum");
    return x;
  }
  std::vector<std::int64_t> axes(x.dim());
  for (std::int64_t d = 0; d < x.dim(); ++d) axes[d] = d;
  return sum(x, axes, false);
}

Tensor mean(const Tensor& x) { return mul_scalar(sum(x), 1.0 / static_cast<double>(x.numel())); }

Tensor mean(const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdim) {
  const std::vector<bool> reduce = reduced_dims(x, axes, "mean");
  std::int64_t count = 1;
  for (std::int64_t d = 0; d < x.dim(); ++d)
    if (reduce[d]) count *= x.size(d);
  return mul_scalar(sum(x, axes, keepdim), 1.0 / static_cast<double>(count));
}

Tensor softmax(const Tensor& x, std::int64_t dim) { return softmax_op(x, dim, SoftmaxKind::Prob, "softmax"); }

Tensor log_softmax(const Tensor& x, std::int64_t dim) {
  return softmax_op(x, dim, SoftmaxKind::Log, "log_softmax");
}

namespace {
// cross_entropy on the GPU: logits [n, c] and labels [n] contiguous on the
// device; the per-row log-sum-exp stays there for the backward.
Tensor cuda_cross_entropy(const Tensor& logits_in, const Tensor& logits, const Tensor& labels) {
  const std::int64_t n = logits.size(0), c_size = logits.size(1);
  const Device device = logits.device();
  Tensor lse = Tensor::empty({n}, DType::Float64, device);
  Tensor row_loss = Tensor::empty({n}, DType::Float64, device);
  Tensor out = Tensor::empty({}, logits.dtype(), device);
  cuda_kernels().engine_cross_entropy(logits.data<float>(), labels.data<std::int32_t>(), n, c_size,
                                      lse.data<double>(), row_loss.data<double>(), out.data<float>());
  return record(out, "cross_entropy", {logits_in}, [logits, labels, lse, n, c_size](const Tensor& g_in) {
    const Tensor g = g_in.detach().contiguous();
    op_device("cross_entropy backward", {logits, g});
    Tensor gx = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
    cuda_kernels().engine_cross_entropy_backward(logits.data<float>(), labels.data<std::int32_t>(),
                                                 lse.data<double>(), g.data<float>(), n, c_size, gx.data<float>());
    return std::vector<Tensor>{gx};
  });
}
}  // namespace

Tensor cross_entropy(const Tensor& logits_in, const Tensor& labels_in) {
  const Device device = op_device("cross_entropy", {logits_in, labels_in});
  check_float(logits_in, "cross_entropy");
  check_dtype(labels_in, DType::Int32, "cross_entropy labels");
  if (logits_in.dim() != 2 || labels_in.dim() != 1 || labels_in.size(0) != logits_in.size(0))
    throw ShapeError("cross_entropy: expected logits [N, C] and labels [N], got " + shape_str(logits_in.shape()) +
                     " and " + shape_str(labels_in.shape()));
  const Tensor logits = logits_in.detach().contiguous();
  const Tensor labels = labels_in.contiguous();
  const std::int64_t n = logits.size(0), c_size = logits.size(1);
  // Labels are checked on the host (a CUDA tensor is read back: n ints).
  const Tensor host_labels = labels.to(Device::cpu());
  const std::int32_t* lab = host_labels.data<std::int32_t>();
  for (std::int64_t i = 0; i < n; ++i)
    if (lab[i] < 0 || lab[i] >= c_size)
      throw ValueError("cross_entropy: label " + std::to_string(lab[i]) + " at index " + std::to_string(i) +
                       " is out of range [0, " + std::to_string(c_size) + ") for C = " + std::to_string(c_size));
  if (device.is_cuda()) return cuda_cross_entropy(logits_in, logits, labels);
  std::vector<std::int32_t> label_copy(lab, lab + n);
  // Per row: log-sum-exp (kept for backward) and the row loss lse - x[label].
  std::vector<double> lse(n), row_loss(n);
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* px = logits.data<T>();
    const std::int64_t grain = cpu::grain_for(n, std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(c_size, 1)));
    cpu::parallel_for(0, n, grain, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) {
        const T* row = px + i * c_size;
        double m = -std::numeric_limits<double>::infinity();
        for (std::int64_t c = 0; c < c_size; ++c) m = std::max(m, double(row[c]));
        if (std::isinf(m) && m < 0) m = 0;
        double s = 0;
        for (std::int64_t c = 0; c < c_size; ++c) s += std::exp(double(row[c]) - m);
        lse[i] = m + std::log(s);
        row_loss[i] = lse[i] - double(row[label_copy[i]]);
      }
    });
  });
  const double total = deterministic_sum(n, [&](std::int64_t i) { return row_loss[i]; });
  Tensor out = Tensor::scalar(total / static_cast<double>(n), logits.dtype());
  return record(out, "cross_entropy", {logits_in},
                [logits, lse = std::move(lse), label_copy = std::move(label_copy)](const Tensor& g) {
                  const double scale = g.item() / static_cast<double>(logits.size(0));
                  Tensor gx = Tensor::empty(logits.shape(), logits.dtype());
                  const std::int64_t rows = logits.size(0), cols = logits.size(1);
                  dispatch_float(logits.dtype(), "cross_entropy backward", [&](auto tag) {
                    using T = decltype(tag);
                    const T* px = logits.data<T>();
                    T* pg = gx.data<T>();
                    const std::int64_t grain =
                        cpu::grain_for(rows, std::max<std::int64_t>(1, 4096 / std::max<std::int64_t>(cols, 1)));
                    cpu::parallel_for(0, rows, grain, [&](std::int64_t lo, std::int64_t hi) {
                      for (std::int64_t i = lo; i < hi; ++i) {
                        const T* row = px + i * cols;
                        T* grow = pg + i * cols;
                        for (std::int64_t c = 0; c < cols; ++c)
                          grow[c] = static_cast<T>(scale * std::exp(double(row[c]) - lse[i]));
                        grow[label_copy[i]] -= static_cast<T>(scale);
                      }
                    });
                  });
                  return std::vector<Tensor>{gx};
                });
}

Tensor mse_loss(const Tensor& prediction, const Tensor& target) {
  const Device device = op_device("mse_loss", {prediction, target});
  check_float(prediction, "mse_loss");
  check_same_shape(prediction, target, "mse_loss");
  check_dtype(target, prediction.dtype(), "mse_loss");
  const Tensor p = prediction.detach().contiguous();
  const Tensor t = target.detach().contiguous();
  const std::int64_t n = p.numel();
  if (device.is_cuda()) {
    Tensor out = Tensor::empty({}, p.dtype(), device);
    cuda_kernels().engine_squared_error_mean(p.data<float>(), t.data<float>(), n, out.data<float>());
    if (!any_requires_grad({prediction, target})) return out;
    const bool need_t = target.requires_grad();
    return record(out, "mse_loss", {prediction, target}, [p, t, n, need_t](const Tensor& g) {
      const double scale = 2.0 * g.item() / static_cast<double>(n);  // reads the scalar gradient back
      Tensor gp = detail::binary<engine_law::Binary::mse_grad>(p, t, "mse_loss backward", scale);
      return std::vector<Tensor>{gp, need_t ? neg(gp) : Tensor()};
    });
  }
  const double total = dispatch_float(p.dtype(), "mse_loss", [&](auto tag) {
    using T = decltype(tag);
    const T* pp = p.data<T>();
    const T* pt = t.data<T>();
    return deterministic_sum(n, [pp, pt](std::int64_t i) {
      const double d = double(pp[i]) - double(pt[i]);
      return d * d;
    });
  });
  Tensor out = Tensor::scalar(total / static_cast<double>(n), p.dtype());
  if (!any_requires_grad({prediction, target})) return out;
  const bool need_t = target.requires_grad();
  return record(out, "mse_loss", {prediction, target}, [p, t, n, need_t](const Tensor& g) {
    const double scale = 2.0 * g.item() / static_cast<double>(n);
    Tensor gp = detail::binary<engine_law::Binary::mse_grad>(p, t, "mse_loss backward", scale);
    Tensor gt = need_t ? neg(gp) : Tensor();
    return std::vector<Tensor>{gp, gt};
  });
}

std::vector<std::int32_t> argmax_rows(const Tensor& x_in) {
  // The result is a host vector: a CUDA tensor is read back and scanned here.
  op_device("argmax_rows", {x_in});
  if (x_in.dim() != 2) throw ShapeError("argmax_rows: expected [N, C], got " + shape_str(x_in.shape()));
  const Tensor x = x_in.detach().to(Device::cpu()).contiguous();
  const std::int64_t n = x.size(0), c_size = x.size(1);
  if (c_size == 0 && n > 0) throw ShapeError("argmax_rows: no columns in " + shape_str(x.shape()));
  std::vector<std::int32_t> result(n, 0);
  dispatch_float(x.dtype(), "argmax_rows", [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const T* row = px + i * c_size;
      std::int64_t best = 0;
      for (std::int64_t c = 0; c < c_size; ++c) {
        if (std::isnan(row[c])) { best = c; break; }  // NaN counts as the largest, as in PyTorch
        if (row[c] > row[best]) best = c;
      }
      result[i] = static_cast<std::int32_t>(best);
    }
  });
  return result;
}

}  // namespace aimc
