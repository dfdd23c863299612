// Dense matrix products on the CPU, row-major, in parallel: Eigen, or a
// direct register-tiled kernel for the small shapes where Eigen's packing
// costs more than the product (see gemm.cpp).
//
//   C[M,N] = alpha * op(A) * op(B) + beta * C
//
// op(X) is X or its transpose. lda/ldb/ldc are row strides in elements, so a
// column block of a wider matrix can be passed without a copy. The output is
// cut into fixed blocks (a function of M, N and K only), so the bits do not
// depend on the thread count.
#pragma once

#include <cstdint>

namespace aimc::cpu {

struct GemmShape {
  bool trans_a = false;  // A stored [K,M] instead of [M,K]
  bool trans_b = false;  // B stored [N,K] instead of [K,N]
  std::int64_t m = 0, n = 0, k = 0;
  std::int64_t lda = 0, ldb = 0, ldc = 0;
};

void gemm(const GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c);
void gemm(const GemmShape& s, double alpha, const double* a, const double* b, double beta, double* c);

// Convenience: C[M,N] = op(A) op(B) with dense leading dimensions.
GemmShape gemm_shape(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k);

}  // namespace aimc::cpu
