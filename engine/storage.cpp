// Storage allocation on CPU (aligned) and CUDA, with a CPU byte counter.
#include "engine/storage.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <stdexcept>

#include "engine/error.h"
#include "kernels/cuda/cuda_api.h"

namespace aimc {
namespace {
constexpr std::size_t kAlignment = 64;  // bytes: one cache line, full AVX-512 vector
std::atomic<std::size_t> live_bytes{0};
std::atomic<std::size_t> peak_bytes{0};

void count_alloc(std::size_t bytes) {
  std::size_t now = live_bytes.fetch_add(bytes) + bytes;
  std::size_t peak = peak_bytes.load();
  while (now > peak && !peak_bytes.compare_exchange_weak(peak, now)) {
  }
}
}  // namespace

Storage::Storage(std::size_t bytes, Device device) : bytes_(bytes), device_(device) {
  if (device.is_cpu()) {
    std::size_t rounded = ((bytes + kAlignment - 1) / kAlignment) * kAlignment;
    if (rounded == 0) rounded = kAlignment;
    data_ = std::aligned_alloc(kAlignment, rounded);
    if (data_ == nullptr) throw std::bad_alloc();
    count_alloc(bytes_);
  } else {
    if (!cuda::available()) throw DeviceError("CUDA device requested but no usable GPU (or a CPU-only build)");
    try {
      data_ = cuda::device_malloc(bytes);
    } catch (const std::runtime_error& e) {
      throw DeviceError(e.what());
    }
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    std::free(data_);
    live_bytes.fetch_sub(bytes_);
  } else {
    cuda::device_free(data_);
  }
}

std::size_t Storage::live_cpu_bytes() { return live_bytes.load(); }
std::size_t Storage::peak_cpu_bytes() { return peak_bytes.load(); }
void Storage::reset_peak_cpu_bytes() { peak_bytes.store(live_bytes.load()); }

}  // namespace aimc
