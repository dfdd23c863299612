// Deterministic chunked parallel_for over oneTBB (see parallel.h).
#include "kernels/cpu/parallel.h"

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace aimc::cpu {
namespace {
std::mutex control_mutex;
std::unique_ptr<tbb::global_control> control;
std::atomic<int> thread_limit{0};
}  // namespace

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(control_mutex);
  control.reset();
  thread_limit = n;
  if (n > 0) {
    control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                    static_cast<std::size_t>(n));
  }
}

int num_threads() {
  int cores = tbb::info::default_concurrency();
  const int limit = thread_limit.load();
  return limit > 0 ? limit : cores;
}

void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& body) {
  if (end <= begin) return;
  if (grain < 1) grain = 1;
  const std::int64_t chunks = (end - begin + grain - 1) / grain;
  if (chunks == 1 || num_threads() == 1) {
    // Same chunk boundaries as the parallel path, run in order.
    for (std::int64_t k = 0; k < chunks; ++k)
      body(begin + k * grain, std::min(end, begin + (k + 1) * grain));
    return;
  }
#if defined(AIMC_PARALLEL_STD_THREADS)
  // ThreadSanitizer builds (tools/sanitize.sh): the same chunks on plain
  // std::threads, whose start, join and atomics the sanitizer sees; inside
  // the uninstrumented libtbb it cannot, and reports TBB's own hand-offs as
  // races. Exceptions reach the caller as with TBB.
  const std::int64_t workers = std::min<std::int64_t>(num_threads(), chunks);
  std::atomic<std::int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto work = [&] {
    try {
      for (std::int64_t k; (k = next++) < chunks;) body(begin + k * grain, std::min(end, begin + (k + 1) * grain));
    } catch (...) {
      const std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (std::int64_t w = 1; w < workers; ++w) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
#else
  tbb::parallel_for(
      tbb::blocked_range<std::int64_t>(0, chunks, 1),
      [&](const tbb::blocked_range<std::int64_t>& r) {
        for (std::int64_t k = r.begin(); k < r.end(); ++k)
          body(begin + k * grain, std::min(end, begin + (k + 1) * grain));
      },
      tbb::simple_partitioner());
#endif
}

std::int64_t grain_for(std::int64_t n, std::int64_t min_grain, std::int64_t max_chunks) {
  if (n <= 0) return 1;
  std::int64_t g = (n + max_chunks - 1) / max_chunks;
  return std::max<std::int64_t>(std::max<std::int64_t>(g, min_grain), 1);
}

}  // namespace aimc::cpu
