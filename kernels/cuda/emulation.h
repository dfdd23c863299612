// Host emulation of the CUDA dialect our kernels use (kernels/cuda/*.cu), so
// tests/cuda_emulation can run the kernels' logic on a machine without a GPU.
// Every launch runs on the calling thread as ONE block of ONE thread: the
// grid- and block-stride loops then visit every index in order, reductions
// over a block are trivial and __syncthreads is a no-op. This checks indexing,
// random layouts, modes and host orchestration; it cannot find races or errors
// in multi-thread reductions, which only a GPU run (tests/test_cuda*.cpp) can.
#pragma once

#include <cmath>
#include <cstdint>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct AimcEmulatedDim3 {
  unsigned x, y, z;
};
inline constexpr AimcEmulatedDim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
inline constexpr AimcEmulatedDim3 blockDim{1, 1, 1}, gridDim{1, 1, 1};

inline void __syncthreads() {}
inline int __syncthreads_or(int predicate) { return predicate; }
// Compiled with -ffp-contract=off, so these round as the intrinsics do.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }

enum cudaError_t { cudaSuccess = 0 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "no error"; }
