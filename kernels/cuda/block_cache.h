// A cache of freed device blocks by size class, behind cuda::device_malloc /
// device_free (kernels/cuda/runtime.cu): the analog kernels allocate scratch
// buffers on every call, and cudaMalloc / cudaFree (which synchronises the
// whole device) would otherwise cost more than a 512 x 512 tile's MVM.
// Reuse is safe in stream order: all aimc work runs on the legacy default
// stream, so a block freed after launching work that reads it can be handed
// to work launched later. Plain C++ (no CUDA types), tested on the host by
// tests/test_block_cache.cpp with malloc standing in for cudaMalloc.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace aimc::cuda {

class BlockCache {
 public:
  using RawAlloc = void* (*)(std::size_t bytes);  // throws on failure
  using RawFree = void (*)(void* ptr);

  // Keeps at most limit_bytes of freed blocks; beyond that they are freed.
  BlockCache(RawAlloc raw_alloc, RawFree raw_free, std::size_t limit_bytes)
      : raw_alloc_(raw_alloc), raw_free_(raw_free), limit_(limit_bytes) {}
  BlockCache(const BlockCache&) = delete;
  BlockCache& operator=(const BlockCache&) = delete;
  ~BlockCache() { trim(); }

  // Bytes actually reserved for a request: powers of two from 512 B up to
  // 1 MiB, then multiples of 1 MiB (at most 1 MiB or 2x wasted).
  static std::size_t size_class(std::size_t bytes) {
    constexpr std::size_t kMiB = std::size_t(1) << 20;
    if (bytes > kMiB) return (bytes + kMiB - 1) / kMiB * kMiB;
    std::size_t c = 512;
    while (c < bytes) c *= 2;
    return c;
  }

  // A block of at least `bytes`: a cached one of the same class, or a new
  // one (after freeing the whole cache and retrying once if that fails).
  void* allocate(std::size_t bytes) {
    const std::size_t c = size_class(bytes);
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(c);
      if (it != free_.end() && !it->second.empty()) {
        void* ptr = it->second.back();
        it->second.pop_back();
        cached_ -= c;
        size_of_[ptr] = c;
        return ptr;
      }
    }
    void* ptr = nullptr;
    try {
      ptr = raw_alloc_(c);
    } catch (...) {
      trim();
      ptr = raw_alloc_(c);
    }
    const std::lock_guard<std::mutex> lock(mutex_);
    size_of_[ptr] = c;
    ++raw_allocations_;
    return ptr;
  }

  // Returns a block from allocate() to the cache (null: nothing). Blocks it
  // does not know (not from allocate) are passed to the raw free.
  void release(void* ptr) noexcept {
    if (ptr == nullptr) return;
    std::size_t c = 0;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      auto it = size_of_.find(ptr);
      if (it != size_of_.end()) {
        c = it->second;
        size_of_.erase(it);
        if (cached_ + c <= limit_) {
          try {
            free_[c].push_back(ptr);
            cached_ += c;
            return;
          } catch (...) {  // no memory for the list: free the block instead
          }
        }
      }
    }
    raw_free_(ptr);
  }

  // True when ptr is a live block from this cache's allocate().
  bool owns(const void* ptr) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return size_of_.count(const_cast<void*>(ptr)) != 0;
  }
  // Frees every cached block.
  void trim() noexcept {
    std::map<std::size_t, std::vector<void*>> blocks;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      cached_ = 0;
    }
    for (auto& [c, list] : blocks)
      for (void* ptr : list) raw_free_(ptr);
  }

  std::size_t cached_bytes() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return cached_;
  }
  std::size_t live_blocks() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return size_of_.size();
  }
  // New blocks taken from raw_alloc so far (cache misses): constant while a
  // steady workload reuses its blocks.
  std::size_t raw_allocations() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return raw_allocations_;
  }

 private:
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  std::size_t limit_;
  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<void*>> free_;  // size class -> cached blocks
  std::unordered_map<void*, std::size_t> size_of_;  // live block -> size class
  std::size_t cached_ = 0;
  std::size_t raw_allocations_ = 0;
};

}  // namespace aimc::cuda
