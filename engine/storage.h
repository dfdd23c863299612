// Reference-counted raw memory on a device: 64-byte aligned on the CPU,
// cudaMalloc'ed on CUDA. Tensors share a Storage through views.
#pragma once

#include <cstddef>
#include <memory>

#include "engine/dtype.h"

namespace aimc {

class Storage {
 public:
  Storage(std::size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() { return data_; }
  const void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

  // Moves the bytes to `device` in place: every tensor viewing this storage
  // follows, so handles held elsewhere stay valid. No-op when already there.
  // DeviceError when the device cannot be used (no GPU, out of memory).
  void move_to(Device device);

  // Bytes currently held by all live CPU storages, and their peak (for benches).
  static std::size_t live_cpu_bytes();
  static std::size_t peak_cpu_bytes();
  static void reset_peak_cpu_bytes();

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  Device device_;
};

}  // namespace aimc
