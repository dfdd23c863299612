// Row-major GEMM with a deterministic parallel split (see gemm.h): Eigen,
// and a direct kernel for products with few output rows.
#include "kernels/cpu/gemm.h"

#include <Eigen/Core>

#include <algorithm>
#include <utility>
#include <vector>

#if __has_include(<experimental/simd>)
#include <experimental/simd>
#define AIMC_GEMM_DIRECT 1
#endif

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

#ifdef AIMC_GEMM_DIRECT
// ---- Direct kernel for B not transposed and a small op(A) (use_direct).
// Eigen packs both operands into panels first, which costs more than the
// product when C has few rows or k is short (the layer shapes of small
// networks: batch 64, widths of tens to hundreds). Here tiles of up to 8 rows
// x 2 vectors of C keep their sums in registers while rows of B stream
// through; op(A) is read in place. Every element is one running sum over k in
// ascending order, so the result does not depend on the blocking.
constexpr int kTileRows = 8;
constexpr std::int64_t kTailChunk = 256;  // rows of B per packed tail panel

namespace stdx = std::experimental;

// acc [R, V*W] (row stride V*W) = A[R rows, k] · B[k, V*W columns], plus
// the previous acc if `resume`. Element (i, p) of A is a[i * a_row + p * a_k];
// row p of B starts at b + p * ldb.
template <class T, int R, int V>
void direct_tile(std::int64_t k, const T* a, std::int64_t a_row, std::int64_t a_k, const T* b, std::int64_t ldb,
                 bool resume, T* acc_io) {
  using Vec = stdx::native_simd<T>;
  constexpr std::int64_t w = static_cast<std::int64_t>(Vec::size());
  const auto flag = stdx::element_aligned;
  Vec acc[R][V];
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < V; ++v) {
      if (resume) acc[i][v].copy_from(acc_io + (i * V + v) * w, flag);
      else acc[i][v] = T(0);
    }
  for (std::int64_t p = 0; p < k; ++p) {
    Vec bv[V];
    for (int v = 0; v < V; ++v) bv[v].copy_from(b + p * ldb + v * w, flag);
    for (int i = 0; i < R; ++i) {
      const Vec av(a[i * a_row + p * a_k]);
      for (int v = 0; v < V; ++v) acc[i][v] += av * bv[v];
    }
  }
  for (int i = 0; i < R; ++i)
    for (int v = 0; v < V; ++v) acc[i][v].copy_to(acc_io + (i * V + v) * w, flag);
}

template <class T, int V, int... R>
void direct_tile_rows(std::integer_sequence<int, R...>, int rows, std::int64_t k, const T* a, std::int64_t a_row,
                      std::int64_t a_k, const T* b, std::int64_t ldb, bool resume, T* acc_io) {
  using Fn = void (*)(std::int64_t, const T*, std::int64_t, std::int64_t, const T*, std::int64_t, bool, T*);
  static constexpr Fn table[] = {&direct_tile<T, R + 1, V>...};
  table[rows - 1](k, a, a_row, a_k, b, ldb, resume, acc_io);
}

// The direct kernel reads B once per 8 rows of C: worth it when C has few
// rows, or when a column panel of B (k x 2 vectors) and op(A) (m x k) stay
// in the L2 cache.
bool use_direct(const GemmShape& s) {
  return !s.trans_b && (s.m <= 16 || (s.k <= 1024 && s.m * s.k <= (std::int64_t(1) << 18)));
}

// Rows [r0, r1) x columns [c0, c1) of C = alpha op(A) B + beta C (see use_direct).
template <class T>
void direct_block(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c, std::int64_t r0,
                  std::int64_t r1, std::int64_t c0, std::int64_t c1) {
  constexpr std::int64_t w = static_cast<std::int64_t>(stdx::native_simd<T>::size());
  const auto rows_seq = std::make_integer_sequence<int, kTileRows>{};
  const std::int64_t a_row = s.trans_a ? 1 : s.lda, a_k = s.trans_a ? s.lda : 1;
  T acc[kTileRows * 2 * w];
  std::vector<T> panel;
  // acc holds rows [i0, i0 + rows) x columns [j, j + cols) of alpha op(A) B.
  auto store = [&](std::int64_t i0, int rows, std::int64_t j, std::int64_t cols, std::int64_t stride) {
    for (int i = 0; i < rows; ++i) {
      T* out = c + (i0 + i) * s.ldc + j;
      const T* sum = acc + i * stride;
      if (beta == T(0)) {
        for (std::int64_t q = 0; q < cols; ++q) out[q] = alpha * sum[q];
      } else {
        for (std::int64_t q = 0; q < cols; ++q) out[q] = alpha * sum[q] + beta * out[q];
      }
    }
  };
  for (std::int64_t i0 = r0; i0 < r1; i0 += kTileRows) {
    const int rows = static_cast<int>(std::min<std::int64_t>(kTileRows, r1 - i0));
    const T* a_rows = a + i0 * a_row;
    std::int64_t j = c0;
    for (; j + 2 * w <= c1; j += 2 * w) {
      direct_tile_rows<T, 2>(rows_seq, rows, s.k, a_rows, a_row, a_k, b + j, s.ldb, false, acc);
      store(i0, rows, j, 2 * w, 2 * w);
    }
    for (; j + w <= c1; j += w) {
      direct_tile_rows<T, 1>(rows_seq, rows, s.k, a_rows, a_row, a_k, b + j, s.ldb, false, acc);
      store(i0, rows, j, w, w);
    }
    if (j < c1) {
      // Fewer than w columns left: copy them, zero-padded, into panels of
      // kTailChunk rows of B; the running sums carry over between panels.
      const std::int64_t cols = c1 - j;
      panel.assign(static_cast<std::size_t>(kTailChunk * w), T(0));
      std::fill(acc, acc + rows * w, T(0));
      for (std::int64_t p0 = 0; p0 < s.k; p0 += kTailChunk) {
        const std::int64_t kk = std::min(kTailChunk, s.k - p0);
        for (std::int64_t p = 0; p < kk; ++p)
          std::copy(b + (p0 + p) * s.ldb + j, b + (p0 + p) * s.ldb + c1, panel.data() + p * w);
        direct_tile_rows<T, 1>(rows_seq, rows, kk, a_rows + p0 * a_k, a_row, a_k, panel.data(), w, true, acc);
      }
      store(i0, rows, j, cols, w);
    }
  }
}
#endif

template <class T>
void gemm_impl(const GemmShape& s, T alpha, const T* a, const T* b, T beta, T* c) {
  if (s.m <= 0 || s.n <= 0) return;
  const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
#ifdef AIMC_GEMM_DIRECT
  if (use_direct(s)) {
    // Blocks of the longer side in parallel, as below; see direct_block.
    if (flops < 4e6) {
      direct_block(s, alpha, a, b, beta, c, 0, s.m, 0, s.n);
    } else if (s.m > s.n) {
      const std::int64_t grain = ((grain_for(s.m, 64, 32) + 15) / 16) * 16;
      parallel_for(0, s.m, grain, [&](std::int64_t r0, std::int64_t r1) {
        direct_block(s, alpha, a, b, beta, c, r0, r1, 0, s.n);
      });
    } else {
      const std::int64_t grain = ((grain_for(s.n, 64, 32) + 15) / 16) * 16;
      parallel_for(0, s.n, grain, [&](std::int64_t c0, std::int64_t c1) {
        direct_block(s, alpha, a, b, beta, c, 0, s.m, c0, c1);
      });
    }
    return;
  }
#endif
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
