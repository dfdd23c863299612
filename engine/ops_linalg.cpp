// Matrix products on the CPU (kernels/cpu/gemm.h) or the GPU (the backend's
// gemm: cuBLAS, float32): matmul ([M,K] x [K,N], batched [*, M, K] x
// [*, K, N] with broadcast batch dims, vectors as numpy) and linear (x Wᵀ + b
// with W [out, in], x [*, in]).
//
// Operands are passed to the GEMM as they lie in memory: a row-major view or a
// transposed one (e.g. W.transpose(0, 1)) goes in with the matching trans flag
// and row stride, so no transposed copies are made; other layouts are made
// contiguous first. Backward rules are GEMMs with flipped trans flags.
#include <type_traits>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/elementwise.h"
#include "engine/ops.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/backend.h"

namespace aimc {
namespace {

// A logical 2-D matrix [rows, cols] as GEMM input: stored row-major with row
// stride ld, or (trans) as its transpose [cols, rows] with row stride ld.
struct Operand {
  Tensor data;  // detached; keeps the storage alive
  std::int64_t rows = 0, cols = 0;
  bool trans = false;
  std::int64_t ld = 1;
};

Operand gemm_operand(const Tensor& t_in) {
  const Tensor t = t_in.detach();
  Operand op;
  op.rows = t.size(0);
  op.cols = t.size(1);
  const std::int64_t s0 = t.strides()[0], s1 = t.strides()[1];
  if ((op.cols <= 1 || s1 == 1) && (op.rows <= 1 || s0 >= op.cols)) {
    op.data = t;
    op.ld = std::max<std::int64_t>(1, op.rows <= 1 ? op.cols : s0);
  } else if ((op.rows <= 1 || s0 == 1) && (op.cols <= 1 || s1 >= op.rows)) {
    op.data = t;
    op.trans = true;
    op.ld = std::max<std::int64_t>(1, op.cols <= 1 ? op.rows : s1);
  } else {
    op.data = t.contiguous();
    op.ld = std::max<std::int64_t>(1, op.cols);
  }
  return op;
}

// C = alpha op(A) op(B) + beta C on the device that holds the operands.
template <class T>
void gemm_on(Device device, const cpu::GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c) {
  if constexpr (std::is_same_v<T, float>) {
    if (device.is_cuda()) {
      cuda_kernels().gemm(s, alpha, a, b, beta, c);
      return;
    }
  }
  cpu::gemm(s, alpha, a, b, beta, c);
}

// c [m, n] (row stride n) = op(a) op(b) + beta c, with op(x) = x or xᵀ (transpose_*).
template <class T>
void gemm_operands(const Operand& a, bool transpose_a, const Operand& b, bool transpose_b, T beta, T* c) {
  cpu::GemmShape s;
  s.m = transpose_a ? a.cols : a.rows;
  s.k = transpose_a ? a.rows : a.cols;
  s.n = transpose_b ? b.rows : b.cols;
  s.trans_a = a.trans != transpose_a;
  s.trans_b = b.trans != transpose_b;
  s.lda = a.ld;
  s.ldb = b.ld;
  s.ldc = std::max<std::int64_t>(1, s.n);
  gemm_on<T>(a.data.device(), s, T(1), a.data.template data<T>(), b.data.template data<T>(), beta, c);
}

Tensor gemm_tensor(const Operand& a, bool transpose_a, const Operand& b, bool transpose_b) {
  const std::int64_t m = transpose_a ? a.cols : a.rows;
  const std::int64_t n = transpose_b ? b.rows : b.cols;
  Tensor out = Tensor::empty({m, n}, a.data.dtype(), a.data.device());
  dispatch_float(out.dtype(), "gemm", [&](auto tag) {
    using T = decltype(tag);
    gemm_operands<T>(a, transpose_a, b, transpose_b, T(0), out.data<T>());
  });
  return out;
}

void check_pair(const Tensor& a, const Tensor& b, const char* op) {
  op_device(op, {a, b});
  check_float(a, op);
  if (a.dtype() != b.dtype())
    throw ValueError(std::string(op) + ": inputs have different dtypes, " + dtype_name(a.dtype()) + " vs " +
                     dtype_name(b.dtype()));
}

// out[i] = op(a[i]) op(b[i]) for every batch entry i of dense row-major
// stacks (a: [nb, ...], b: [nb, ...], out: [nb, m, n]); one GEMM per entry, in
// order, so the result does not depend on the thread count.
Tensor gemm_batches(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, std::int64_t nb, std::int64_t m,
                    std::int64_t n, std::int64_t k) {
  Tensor out = Tensor::empty({nb, m, n}, a.dtype(), a.device());
  const cpu::GemmShape shape = cpu::gemm_shape(trans_a, trans_b, m, n, k);
  dispatch_float(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* po = out.data<T>();
    for (std::int64_t i = 0; i < nb; ++i)
      gemm_on<T>(a.device(), shape, T(1), pa + i * m * k, pb + i * k * n, T(0), po + i * m * n);
  });
  return out;
}

// a [*A, M, K] x b [*B, K, N] -> [broadcast(*A, *B), M, N], both at least 2-D.
// The operands are expanded to the broadcast batch (contiguous copies); the
// engine sums the gradients back over the broadcast dims (sum_to_shape).
Tensor batched_matmul(const Tensor& a, const Tensor& b) {
  const std::int64_t m = a.size(a.dim() - 2), k = a.size(a.dim() - 1), n = b.size(b.dim() - 1);
  const Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                       Shape(b.shape().begin(), b.shape().end() - 2));
  std::int64_t nb = 1;
  for (auto d : batch) nb *= d;
  Shape a_full = batch, b_full = batch, out_shape = batch;
  a_full.insert(a_full.end(), {m, k});
  b_full.insert(b_full.end(), {k, n});
  out_shape.insert(out_shape.end(), {m, n});
  const Tensor ea = detail::expand_to(a.detach(), a_full).contiguous();
  const Tensor eb = detail::expand_to(b.detach(), b_full).contiguous();
  Tensor out = gemm_batches(ea, false, eb, false, nb, m, n, k).reshape(out_shape);
  if (!any_requires_grad({a, b})) return out;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(out, "matmul", {a, b}, [ea, eb, need_a, need_b, nb, m, n, k, a_full, b_full](const Tensor& g_in) {
    const Tensor g = g_in.detach().contiguous();
    // Gradients of the expanded operands; the engine sums them to a's and b's shapes.
    Tensor ga = need_a ? gemm_batches(g, false, eb, true, nb, m, k, n).reshape(a_full) : Tensor();  // g Bᵀ
    Tensor gb = need_b ? gemm_batches(ea, true, g, false, nb, k, n, m).reshape(b_full) : Tensor();  // Aᵀ g
    return std::vector<Tensor>{ga, gb};
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "matmul");
  const auto bad = [&] {
    return ShapeError("matmul: expected [*, M, K] x [*, K, N] (batch dims broadcast; a 1-D operand is a vector), "
                      "got " + shape_str(a.shape()) + " x " + shape_str(b.shape()));
  };
  if (a.dim() == 0 || b.dim() == 0 || a.size(a.dim() - 1) != b.size(b.dim() >= 2 ? b.dim() - 2 : 0)) throw bad();
  // Vectors as numpy: a [K] is a row [1, K], b [K] a column [K, 1]; the added dim is dropped again.
  if (a.dim() == 1 || b.dim() == 1) {
    const Tensor a2 = a.dim() == 1 ? reshape(a, {1, a.size(0)}) : a;
    const Tensor b2 = b.dim() == 1 ? reshape(b, {b.size(0), 1}) : b;
    const Tensor y = matmul(a2, b2);
    Shape shape(y.shape().begin(), y.shape().end() - 2);
    if (a.dim() != 1) shape.push_back(y.size(y.dim() - 2));
    if (b.dim() != 1) shape.push_back(y.size(y.dim() - 1));
    return reshape(y, shape);
  }
  if (a.dim() > 2 && b.dim() == 2) {
    // A shared right operand (a projection): the batch is rows of one GEMM.
    Shape shape(a.shape().begin(), a.shape().end() - 1);
    shape.push_back(b.size(1));
    return reshape(matmul(reshape(a, {-1, a.size(a.dim() - 1)}), b), shape);
  }
  if (a.dim() != 2 || b.dim() != 2) {
    try {
      return batched_matmul(a, b);
    } catch (const ShapeError&) {
      throw bad();  // batch dims that do not broadcast
    }
  }
  const Operand oa = gemm_operand(a), ob = gemm_operand(b);
  Tensor out = gemm_tensor(oa, false, ob, false);
  if (!any_requires_grad({a, b})) return out;
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(out, "matmul", {a, b}, [oa, ob, need_a, need_b](const Tensor& g) {
    const Operand og = gemm_operand(g);
    return std::vector<Tensor>{need_a ? gemm_tensor(og, false, ob, true) : Tensor(),   // g Bᵀ
                               need_b ? gemm_tensor(oa, true, og, false) : Tensor()};  // Aᵀ g
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_pair(x, weight, "linear");
  if (x.dim() != 2 && x.dim() >= 1 && weight.dim() == 2 && x.size(x.dim() - 1) == weight.size(1)) {
    // x [*, in]: the leading dims as one batch dim, then back (views when x is contiguous).
    Shape shape(x.shape().begin(), x.shape().end() - 1);
    const Tensor y = linear(reshape(x, {-1, x.size(x.dim() - 1)}), weight, bias);
    shape.push_back(y.size(1));
    return reshape(y, shape);
  }
  if (x.dim() != 2 || weight.dim() != 2 || x.size(1) != weight.size(1))
    throw ShapeError("linear: expected x [*, in] and weight [out, in], got " + shape_str(x.shape()) + " and " +
                     shape_str(weight.shape()));
  const std::int64_t n = x.size(0), out_features = weight.size(0);
  if (bias.defined()) {
    check_pair(x, bias, "linear");
    check_pair(weight, bias, "linear");
    if (bias.dim() != 1 || bias.size(0) != out_features)
      throw ShapeError("linear: bias " + shape_str(bias.shape()) + " does not match weight " +
                       shape_str(weight.shape()) + " (expected [" + std::to_string(out_features) + "])");
  }
  const Operand ox = gemm_operand(x), ow = gemm_operand(weight);
  // Every output row starts at the bias (a broadcast copy); the GEMM then accumulates onto it.
  Tensor out = bias.defined() ? detail::expand_to(bias.detach(), {n, out_features})
                              : Tensor::empty({n, out_features}, x.dtype(), x.device());
  dispatch_float(x.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    gemm_operands<T>(ox, false, ow, true, bias.defined() ? T(1) : T(0), out.data<T>());  // x Wᵀ (+ bias)
  });
  if (!any_requires_grad({x, weight, bias})) return out;
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(out, "linear", {x, weight, bias}, [ox, ow, need_x, need_w, need_b](const Tensor& g) {
    const Operand og = gemm_operand(g);
    Tensor dx = need_x ? gemm_tensor(og, false, ow, false) : Tensor();  // dY W
    Tensor dw = need_w ? gemm_tensor(og, true, ox, false) : Tensor();   // dYᵀ X
    Tensor db = need_b ? sum(g.detach(), {0}, false) : Tensor();        // column sums, fixed order
    return std::vector<Tensor>{dx, dw, db};
  });
}

}  // namespace aimc
