// Matrix products on the CPU: matmul ([M,K] x [K,N]) and linear
// (x Wᵀ + b with W [out, in]) over kernels/cpu/gemm.h.
//
// Operands are passed to the GEMM as they lie in memory: a row-major view or a
// transposed one (e.g. W.transpose(0, 1)) goes in with the matching trans flag
// and row stride, so no transposed copies are made; other layouts are made
// contiguous first. Backward rules are GEMMs with flipped trans flags.
#include "engine/autograd.h"
#include "engine/elementwise.h"
#include "engine/ops.h"
#include "kernels/cpu/gemm.h"

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
  cpu::gemm(s, T(1), a.data.template data<T>(), b.data.template data<T>(), beta, c);
}

Tensor gemm_tensor(const Operand& a, bool transpose_a, const Operand& b, bool transpose_b) {
  const std::int64_t m = transpose_a ? a.cols : a.rows;
  const std::int64_t n = transpose_b ? b.rows : b.cols;
  Tensor out = Tensor::empty({m, n}, a.data.dtype());
  dispatch_float(out.dtype(), "gemm", [&](auto tag) {
    using T = decltype(tag);
    gemm_operands<T>(a, transpose_a, b, transpose_b, T(0), out.data<T>());
  });
  return out;
}

void check_pair(const Tensor& a, const Tensor& b, const char* op) {
  check_cpu(a, op);
  check_cpu(b, op);
  check_float(a, op);
  if (a.dtype() != b.dtype())
    throw ValueError(std::string(op) + ": inputs have different dtypes, " + dtype_name(a.dtype()) + " vs " +
                     dtype_name(b.dtype()));
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "matmul");
  if (a.dim() != 2 || b.dim() != 2 || a.size(1) != b.size(0))
    throw ShapeError("matmul: expected [M, K] x [K, N], got " + shape_str(a.shape()) + " x " + shape_str(b.shape()));
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
  if (x.dim() != 2 || weight.dim() != 2 || x.size(1) != weight.size(1))
    throw ShapeError("linear: expected x [N, in] and weight [out, in], got " + shape_str(x.shape()) + " and " +
                     shape_str(weight.shape()));
  const std::int64_t n = x.size(0), out_features = weight.size(0);
  if (bias.defined()) {
    check_pair(x, bias, "linear");
    if (bias.dim() != 1 || bias.size(0) != out_features)
      throw ShapeError("linear: bias " + shape_str(bias.shape()) + " does not match weight " +
                       shape_str(weight.shape()) + " (expected [" + std::to_string(out_features) + "])");
  }
  const Operand ox = gemm_operand(x), ow = gemm_operand(weight);
  Tensor out = Tensor::empty({n, out_features}, x.dtype());
  dispatch_float(x.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    T* po = out.data<T>();
    T beta = T(0);
    if (bias.defined()) {
      // Start every output row at the bias; the GEMM then accumulates onto it.
      const Tensor b = bias.detach().contiguous();
      const T* pb = b.data<T>();
      const std::int64_t grain = cpu::grain_for(n, std::max<std::int64_t>(1, 8192 / std::max<std::int64_t>(out_features, 1)));
      cpu::parallel_for(0, n, grain, [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t i = lo; i < hi; ++i)
          for (std::int64_t j = 0; j < out_features; ++j) po[i * out_features + j] = pb[j];
      });
      beta = T(1);
    }
    gemm_operands<T>(ox, false, ow, true, beta, po);  // x Wᵀ (+ bias)
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
