// Host emulation of the CUDA dialect our kernels use (kernels/cuda/*.cu), so
// tests/cuda_emulation can run the kernels on a machine without a GPU. A
// launch runs up to kBlocks blocks one after another, each as up to
// kThreadsPerBlock real threads that share the kernel's __shared__ (static)
// memory and meet at __syncthreads / __syncthreads_or (std::barrier). Small
// sizes on purpose: grid- and block-stride loops then wrap several times, and
// the block reductions and barriers run with real concurrency. Device memory
// is host memory (tests/cuda_emulation/runtime.cpp). This checks indexing,
// random layouts, modes, barriers and host logic; it cannot check warp-level
// intrinsics (none are used), timing, or cuBLAS.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static

struct AimcEmulatedDim3 {
  unsigned x, y, z;
};
inline thread_local AimcEmulatedDim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0};
inline thread_local AimcEmulatedDim3 blockDim{1, 1, 1}, gridDim{1, 1, 1};

namespace aimc::cuda_emulation {

constexpr unsigned kThreadsPerBlock = 4;  // a power of two, as our reductions assume
constexpr unsigned kBlocks = 3;

// What the threads of the running block share.
struct Block {
  explicit Block(unsigned threads) : barrier(threads) {}
  std::barrier<> barrier;
  std::atomic<int> vote{0};
};
inline thread_local Block* current_block = nullptr;

// Runs body() as the threads of min(grid, kBlocks) blocks of
// min(block, kThreadsPerBlock) threads.
template <class Body>
void run(unsigned grid, unsigned block, const Body& body) {
  const unsigned blocks = std::max(1u, std::min(grid, kBlocks));
  const unsigned threads = std::max(1u, std::min(block, kThreadsPerBlock));
  for (unsigned b = 0; b < blocks; ++b) {
    Block shared(threads);
    std::vector<std::jthread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        threadIdx = {t, 0, 0};
        blockIdx = {b, 0, 0};
        blockDim = {threads, 1, 1};
        gridDim = {blocks, 1, 1};
        current_block = &shared;
        body();
      });
  }  // each block's threads join before the next block starts
}

// AIMC_LAUNCH(kernel, grid, block)(args...) runs kernel(args...) as above.
template <class... Params>
auto launch(void (*kernel)(Params...), unsigned grid, unsigned block) {
  return [=](auto&&... args) { run(grid, block, [&] { kernel(args...); }); };
}

}  // namespace aimc::cuda_emulation

inline void __syncthreads() { aimc::cuda_emulation::current_block->barrier.arrive_and_wait(); }

// Non-zero on every thread when the predicate is non-zero on any thread.
inline int __syncthreads_or(int predicate) {
  aimc::cuda_emulation::Block& b = *aimc::cuda_emulation::current_block;
  if (predicate) b.vote.store(1);
  b.barrier.arrive_and_wait();
  const int result = b.vote.load();
  b.barrier.arrive_and_wait();  // everyone has read the vote
  if (threadIdx.x == 0) b.vote.store(0);
  b.barrier.arrive_and_wait();
  return result;
}

// Compiled with -ffp-contract=off, so these round as the intrinsics do.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }

enum cudaError_t { cudaSuccess = 0 };
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t) { return "no error"; }
