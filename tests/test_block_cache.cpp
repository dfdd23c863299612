// kernels/cuda/block_cache.h on the host, with malloc standing in for
// cudaMalloc: size classes, reuse of freed blocks, the cache limit, trim, and
// the retry after a failed allocation.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <new>
#include <set>

#include "kernels/cuda/block_cache.h"

using aimc::cuda::BlockCache;

namespace {
int raw_allocs = 0, raw_frees = 0, fail_next = 0;
void* counting_alloc(std::size_t bytes) {
  if (fail_next > 0) {
    --fail_next;
    throw std::bad_alloc();
  }
  ++raw_allocs;
  return std::malloc(bytes);
}
void counting_free(void* p) {
  ++raw_frees;
  std::free(p);
}
void reset() { raw_allocs = raw_frees = fail_next = 0; }
}  // namespace

TEST_CASE("block cache size classes") {
  CHECK(BlockCache::size_class(0) == 512);
  CHECK(BlockCache::size_class(1) == 512);
  CHECK(BlockCache::size_class(513) == 1024);
  CHECK(BlockCache::size_class(1 << 20) == (1 << 20));
  CHECK(BlockCache::size_class((1 << 20) + 1) == (2 << 20));
  CHECK(BlockCache::size_class(64 << 20) == (64 << 20));
  CHECK(BlockCache::size_class((64 << 20) + 5) == (65 << 20));
}

TEST_CASE("block cache reuses freed blocks of the same class and frees beyond its limit") {
  reset();
  {
    BlockCache cache(counting_alloc, counting_free, 4096);
    void* a = cache.allocate(1000);  // class 1024
    void* b = cache.allocate(3000);  // class 4096
    CHECK(raw_allocs == 2);
    cache.release(a);
    CHECK(cache.cached_bytes() == 1024);
    CHECK(cache.allocate(600) == a);  // same class: reused, no new allocation
    CHECK(raw_allocs == 2);
    CHECK(cache.raw_allocations() == 2);  // its own count of cache misses agrees
    CHECK(cache.cached_bytes() == 0);
    cache.release(b);  // 4096 cached: at the limit
    cache.release(a);  // 1024 more would exceed it: freed
    CHECK(cache.cached_bytes() == 4096);
    CHECK(raw_frees == 1);
    CHECK(cache.live_blocks() == 0);
    cache.trim();
    CHECK(cache.cached_bytes() == 0);
    CHECK(raw_frees == 2);
  }
  CHECK(raw_allocs == raw_frees);
}

TEST_CASE("block cache frees its cache and retries once when an allocation fails") {
  reset();
  BlockCache cache(counting_alloc, counting_free, 1 << 20);
  std::set<void*> blocks;
  for (int i = 0; i < 3; ++i) blocks.insert(cache.allocate(2048));
  for (void* p : blocks) cache.release(p);
  CHECK(cache.cached_bytes() == 3 * 2048);
  fail_next = 1;  // the next raw allocation fails: trim, then retry
  void* big = cache.allocate(8192);
  CHECK(big != nullptr);
  CHECK(cache.raw_allocations() == 4);  // 3 blocks and the retried one; the failed try not counted
  CHECK(cache.cached_bytes() == 0);
  CHECK(raw_frees == 3);
  fail_next = 2;  // fails twice: the error reaches the caller
  CHECK_THROWS_AS(cache.allocate(1 << 16), std::bad_alloc);
  cache.release(big);
  cache.release(nullptr);  // allowed, does nothing
}

TEST_CASE("block cache owns its live blocks only (the per-GPU caches find a block's GPU by it)") {
  reset();
  BlockCache first(counting_alloc, counting_free, 4096), second(counting_alloc, counting_free, 4096);
  void* a = first.allocate(100);
  void* b = second.allocate(100);
  CHECK(first.owns(a));
  CHECK_FALSE(first.owns(b));
  CHECK(second.owns(b));
  CHECK_FALSE(second.owns(a));
  first.release(a);  // cached, no longer live
  CHECK_FALSE(first.owns(a));
  CHECK(first.allocate(100) == a);  // reused: live again
  CHECK(first.owns(a));
  int local = 0;
  CHECK_FALSE(first.owns(&local));
  first.release(a);
  second.release(b);
}
