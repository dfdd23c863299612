// Dense float GEMM on CUDA through cuBLAS, with the row-major conventions of
// kernels/cpu/gemm.h: C[M,N] = alpha·op(A)·op(B) + beta·C, lda/ldb/ldc row
// strides. cuBLAS is column-major, so we compute Cᵀ = op(B)ᵀ·op(A)ᵀ, which is
// the same memory. One handle per GPU (created on first use, default
// stream, calls serialised), FP32 math without TF32, so results do not depend
// on the run.
#include <cublas_v2.h>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>

#include "kernels/cuda/check.cuh"
#include "kernels/cuda/cuda_api.h"

namespace aimc::cuda {
namespace {

void check_blas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(what) + " failed: cuBLAS status " + std::to_string(static_cast<int>(status)));
}

// One handle per GPU, created on first use with that GPU current (a cuBLAS
// handle belongs to the GPU current when it is made).
constexpr int kMaxGpus = 64;

cublasHandle_t handle() {
  static cublasHandle_t handles[kMaxGpus] = {};
  const int gpu = current_device();
  if (gpu < 0 || gpu >= kMaxGpus)
    throw std::out_of_range("cuda::gemm: GPU " + std::to_string(gpu) + " past the " + std::to_string(kMaxGpus) +
                            " cuBLAS handles kept");
  if (handles[gpu] == nullptr) {
    cublasHandle_t created = nullptr;
    check_blas(cublasCreate(&created), "cublasCreate");
    const cublasStatus_t mode = cublasSetMathMode(created, CUBLAS_PEDANTIC_MATH);
    if (mode != CUBLAS_STATUS_SUCCESS) cublasDestroy(created);
    check_blas(mode, "cublasSetMathMode");
    handles[gpu] = created;
  }
  return handles[gpu];
}

}  // namespace

void gemm(const cpu::GemmShape& s, float alpha, const float* a, const float* b, float beta, float* c) {
  if (s.m <= 0 || s.n <= 0) return;
  if (s.k <= 0) {  // an empty sum: C = beta·C
    if (s.ldc != s.n) throw std::invalid_argument("cuda::gemm: k = 0 needs a dense C (ldc == n)");
    const std::size_t count = static_cast<std::size_t>(s.m) * static_cast<std::size_t>(s.n);
    if (beta == 0.f) fill(c, count, 0.f);
    else scale(c, count, beta);
    return;
  }
  for (const std::int64_t v : {s.m, s.n, s.k, s.lda, s.ldb, s.ldc})
    if (v > std::numeric_limits<int>::max())
      throw std::invalid_argument("cuda::gemm: size " + std::to_string(v) + " exceeds cuBLAS's int range");
  // Handles made and used under one lock: cuBLAS forbids using one from two host threads at once.
  static std::mutex handle_mutex;
  const std::lock_guard<std::mutex> lock(handle_mutex);
  const cublasOperation_t op_a = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  // Column-major: Cᵀ[N,M] = op(B)ᵀ[N,K] · op(A)ᵀ[K,M]; a row-major matrix with
  // row stride ld is its transpose in column-major with leading dimension ld.
  check_blas(cublasSgemm(handle(), op_b, op_a, static_cast<int>(s.n), static_cast<int>(s.m), static_cast<int>(s.k),
                         &alpha, b, static_cast<int>(s.ldb), a, static_cast<int>(s.lda), &beta, c,
                         static_cast<int>(s.ldc)),
             "cublasSgemm");
}

}  // namespace aimc::cuda
