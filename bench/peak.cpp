// FMA peak microbenchmark: 12 independent vector accumulators per thread,
// each updated with acc = acc * m + c (one FMA), so the loop is bound by FMA
// throughput, not latency. 16-float vectors (GCC vector extension): the
// compiler splits them where the CPU has narrower registers.
#include "bench/peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace aimc::bench {
namespace {

typedef float v16 __attribute__((vector_size(64)));
constexpr int kChains = 12;
constexpr long kIters = 20'000'000 / 16;

float fma_loop(float seed) {
  v16 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = v16{} + (seed + float(i));
  const v16 m = v16{} + 0.999999f, c = v16{} + 1e-7f;
  for (long it = 0; it < kIters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * m + c;
  }
  v16 s = acc[0];
  for (int i = 1; i < kChains; ++i) s += acc[i];
  float r = 0;
  for (int j = 0; j < 16; ++j) r += s[j];
  return r;
}

}  // namespace

double measured_fma_peak_gflops(int threads) {
  threads = std::max(threads, 1);
  const double flops_per_thread = 2.0 * 16.0 * kChains * double(kIters);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    std::atomic<float> sink{0};
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { sink = sink + fma_loop(float(t)); });
    for (auto& th : pool) th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, flops_per_thread * threads / s / 1e9);
  }
  return best;
}

}  // namespace aimc::bench
