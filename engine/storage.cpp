// Storage allocation on CPU (aligned) and CUDA, with a CPU byte counter.
//
// Large CPU blocks are recycled: a training step frees and allocates the same
// sizes every batch, and handing each one back to the C library costs page
// faults (fresh pages from brk/mmap) on every reuse.
#include "engine/storage.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "engine/dispatch.h"
#include "engine/error.h"
#include "kernels/cuda/backend.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace aimc {
namespace {

#if defined(__GLIBC__)
// glibc hands large freed blocks (Eigen's GEMM packing buffers, kernel
// scratch vectors) back to the kernel at once and faults fresh pages in on
// the next call: 10-20 % of a tiled analog forward on 2 cores. Set once, at
// load, the values glibc's own adaptive thresholds grow to on 64-bit
// (mmap 32 MiB; trim 128 MiB), unless the environment
// variable AIMC_KEEP_MALLOC is set.
struct MallocTuning {
  MallocTuning() {
    if (std::getenv("AIMC_KEEP_MALLOC") != nullptr) return;
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
  }
};
const MallocTuning malloc_tuning;
#endif
constexpr std::size_t kAlignment = 64;  // bytes: one cache line, full AVX-512 vector
std::atomic<std::size_t> live_bytes{0};
std::atomic<std::size_t> peak_bytes{0};

void count_alloc(std::size_t bytes) {
  std::size_t now = live_bytes.fetch_add(bytes) + bytes;
  std::size_t peak = peak_bytes.load();
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
  }
}

// Freed CPU blocks of at least kMinBytes, reused by allocations of exactly the
// same rounded size. Holds at most kMaxBytes; the oldest blocks go first.
class BlockCache {
 public:
  static constexpr std::size_t kMinBytes = std::size_t(32) << 10;
  static constexpr std::size_t kMaxBytes = std::size_t(256) << 20;

  void* take(std::size_t bytes) {
    if (bytes < kMinBytes) return nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    for (std::size_t i = blocks_.size(); i-- > 0;) {
      if (blocks_[i].bytes != bytes) continue;
      void* p = blocks_[i].data;
      blocks_.erase(blocks_.begin() + static_cast<std::ptrdiff_t>(i));
      cached_ -= bytes;
      return p;
    }
    return nullptr;
  }

  // Keeps the block (true) or leaves it to the caller to free (false).
  bool give(void* p, std::size_t bytes) {
    if (bytes < kMinBytes || bytes > kMaxBytes / 4) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    try {
      blocks_.push_back({bytes, p});
    } catch (const std::bad_alloc&) {
      return false;
    }
    cached_ += bytes;
    std::size_t evict = 0;
    while (cached_ > kMaxBytes) cached_ -= blocks_[evict++].bytes;
    for (std::size_t i = 0; i < evict; ++i) std::free(blocks_[i].data);
    blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(evict));
    return true;
  }

 private:
  struct Block {
    std::size_t bytes;
    void* data;
  };
  std::mutex mutex_;
  std::vector<Block> blocks_;  // oldest first
  std::size_t cached_ = 0;
};

// Never destroyed: storages may die during static destruction.
BlockCache& block_cache() {
  static BlockCache* cache = new BlockCache;
  return *cache;
}

std::size_t rounded_cpu_bytes(std::size_t bytes) {
  const std::size_t rounded = ((bytes + kAlignment - 1) / kAlignment) * kAlignment;
  return rounded == 0 ? kAlignment : rounded;
}
}  // namespace

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (device.is_cpu()) {
    const std::size_t rounded = rounded_cpu_bytes(bytes);
    data_ = block_cache().take(rounded);
    if (data_ == nullptr) data_ = std::aligned_alloc(kAlignment, rounded);
    if (data_ == nullptr) throw Error("out of memory: cannot allocate " + std::to_string(bytes) + " bytes");
    count_alloc(bytes_);
  } else {
    // Loads the CUDA backend library on first use (DeviceError naming it when it cannot).
    const cuda::Backend& gpu = cuda::backend();
    if (!gpu.available()) throw DeviceError("CUDA device requested but no usable GPU");
    use_cuda_device(device);  // the block lives on that GPU
    try {
      data_ = gpu.device_malloc(bytes);
    } catch (const std::runtime_error& e) {
      throw DeviceError(e.what());
    }
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    if (!block_cache().give(data_, rounded_cpu_bytes(bytes_))) std::free(data_);
    live_bytes.fetch_sub(bytes_);
  } else {
    cuda::backend().device_free(data_);
  }
}

void Storage::move_to(Device device) {
  if (device == device_) return;
  // The new block, filled, then swapped in: the old one is freed (and counted)
  // by `moved`'s destructor under its own device.
  Storage moved(bytes_, device);
  if (bytes_ > 0) {
    try {
      const cuda::Backend& gpu = cuda::backend();
      if (device_.is_cpu()) {
        gpu.copy_host_to_device(moved.data_, data_, bytes_);
      } else {
        gpu.synchronize();  // kernels still writing the source finish first
        if (device.is_cpu())
          gpu.copy_device_to_host(moved.data_, data_, bytes_);
        else
          gpu.copy_device_to_device(moved.data_, data_, bytes_);
      }
    } catch (const DeviceError&) {
      throw;
    } catch (const std::runtime_error& e) {
      throw DeviceError(e.what());
    }
  }
  std::swap(data_, moved.data_);
  std::swap(device_, moved.device_);
}

std::size_t Storage::live_cpu_bytes() { return live_bytes.load(); }
std::size_t Storage::peak_cpu_bytes() { return peak_bytes.load(); }
void Storage::reset_peak_cpu_bytes() { peak_bytes.store(live_bytes.load()); }

}  // namespace aimc
