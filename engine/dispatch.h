// The dispatch seam of the engine: the one table that says which primitive
// ops run on which device type, and the one check every op makes before it
// computes. An op asks op_device() for the device of its inputs; that throws
// one DeviceError naming the op and the device when the inputs are on
// different devices or the device has no kernel for the op. CUDA kernels are
// reached through cuda_kernels() (the table of kernels/cuda/backend.h).
#pragma once

#include <initializer_list>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace aimc::cuda {
struct Backend;
}

namespace aimc {

// One primitive op of the engine and whether CUDA runs it. CUDA runs float32
// only (float64 stays on the CPU, for gradient checks).
struct EngineOp {
  const char* name;  // as the op names itself in errors ("add", "conv", ...)
  bool cuda;         // a CUDA kernel exists
};

// Every primitive op, in engine/ops.h order. Shape views (reshape, flatten,
// transpose, slice) run on any device and are not listed.
const std::vector<EngineOp>& engine_ops();

// True when `op` (an engine_ops() name; the text before a space, so "mul
// backward" is "mul") has a kernel on `device`. Error for an unknown name.
bool op_runs_on(const std::string& op, Device device);

// The device `op` runs on: that of its defined inputs. DeviceError naming
// the op when they are on different devices, when that device has no kernel
// for the op, or for a float64 input on CUDA. A CUDA device is made current
// (use_cuda_device) for the kernels that follow.
Device op_device(const char* op, std::initializer_list<Tensor> inputs);

// The CUDA kernels (loads the backend on first use; DeviceError if it cannot).
const cuda::Backend& cuda_kernels();

// Makes `device`'s GPU current for the calling thread, so the kernels,
// copies and allocations that follow run there (op_device does it for every
// op). DeviceError naming the device when its index is not below the number
// of GPUs found.
void use_cuda_device(Device device);

}  // namespace aimc
