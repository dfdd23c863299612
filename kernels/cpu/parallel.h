// Deterministic parallel loops on oneTBB.
//
// Work is cut into chunks whose boundaries depend only on the problem size and
// the grain, never on the thread count, and every chunk writes its own
// outputs. A result therefore has the same bits for 1, 2 or 8 threads.
#pragma once

#include <cstdint>
#include <functional>

namespace aimc::cpu {

// Limit the worker threads used by every parallel loop (n <= 0: all cores).
void set_num_threads(int n);
int num_threads();

// Calls body(lo, hi) for the chunks [k*grain, min((k+1)*grain, end)) of
// [begin, end), in parallel. grain >= 1.
void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain,
                  const std::function<void(std::int64_t, std::int64_t)>& body);

// Grain that splits n items into at most max_chunks chunks of at least
// min_grain items. A pure function of its arguments.
std::int64_t grain_for(std::int64_t n, std::int64_t min_grain, std::int64_t max_chunks = 64);

}  // namespace aimc::cpu
