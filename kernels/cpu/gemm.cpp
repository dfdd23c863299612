// Row-major GEMM on Eigen with a deterministic parallel split (see gemm.h).
#include "kernels/cpu/gemm.h"

#include <Eigen/Core>

#include <algorithm>

#include "kernels/cpu/parallel.h"

namespace aimc::cpu {
namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using Stride = Eigen::OuterStride<>;

// One block: rows [r0, r1) and columns [c0, c1) of C.
template <class T>
void gemm_block(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c, std::int64_t r0,
                std::int64_t r1, std::int64_t c0, std::int64_t c1) {
  const std::int64_t m = r1 - r0, n = c1 - c0, k = s.k;
  Eigen::Map<RowMat<T>, 0, Stride> cm(c + r0 * s.ldc + c0, m, n, Stride(s.ldc));
  if (k == 0) {
    if (beta == T(0)) cm.setZero();
    else if (beta != T(1)) cm *= beta;
    return;
  }
  // A block: rows r0..r1 of op(A).
  auto run = [&](const auto& am) {
    auto with_b = [&](const auto& bm) {
      if (beta == T(0)) {
        cm.noalias() = alpha * am * bm;
      } else {
        if (beta != T(1)) cm *= beta;
        cm.noalias() += alpha * am * bm;
      }
    };
    if (!s.trans_b) {
      Eigen::Map<const RowMat<T>, 0, Stride> bm(b + c0, k, n, Stride(s.ldb));
      with_b(bm);
    } else {
      // B stored [N,K] row-major == op(B) [K,N] column-major.
      Eigen::Map<const ColMat<T>, 0, Stride> bm(b + c0 * s.ldb, k, n, Stride(s.ldb));
      with_b(bm);
    }
  };
  if (!s.trans_a) {
    Eigen::Map<const RowMat<T>, 0, Stride> am(a + r0 * s.lda, m, k, Stride(s.lda));
    run(am);
  } else {
    // A stored [K,M] row-major == op(A) [M,K] column-major.
    Eigen::Map<const ColMat<T>, 0, Stride> am(a + r0, m, k, Stride(s.lda));
    run(am);
  }
}

template <class T>
void gemm_impl(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c) {
  if (s.m <= 0 || s.n <= 0) return;
  const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
  if (flops < 4e6) {
    gemm_block(s, alpha, a, b, beta, c, 0, s.m, 0, s.n);
    return;
  }
  // Split the longer output side into blocks of at least 64, at most 32 blocks.
  if (s.m >= s.n) {
    const std::int64_t grain = ((grain_for(s.m, 64, 32) + 15) / 16) * 16;
    parallel_for(0, s.m, grain, [&](std::int64_t r0, std::int64_t r1) {
      gemm_block(s, alpha, a, b, beta, c, r0, r1, 0, s.n);
    });
  } else {
    const std::int64_t grain = ((grain_for(s.n, 64, 32) + 15) / 16) * 16;
    parallel_for(0, s.n, grain, [&](std::int64_t c0, std::int64_t c1) {
      gemm_block(s, alpha, a, b, beta, c, 0, s.m, c0, c1);
    });
  }
}

}  // namespace

void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  gemm_impl<float>(s, alpha, a, b, beta, c);
}
void gemm(const GemmShape& s, double alpha, const double* a, const double* b, double beta, double* c) {
  gemm_impl<double>(s, alpha, a, b, beta, c);
}

GemmShape gemm_shape(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k) {
  GemmShape s;
  s.trans_a = trans_a;
  s.trans_b = trans_b;
  s.m = m;
  s.n = n;
  s.k = k;
  s.lda = trans_a ? m : k;
  s.ldb = trans_b ? k : n;
  s.ldc = n;
  return s;
}

}  // namespace aimc::cpu
