// The GPU entries of `aimc bench` (bench/benchmarks.h), each timed against a
// reference on the same GPU in the same run, through the public API a user
// calls (AnalogLinear moved with Module::cuda()). Without a usable GPU each
// returns {"name", "skipped": reason}; a step the build refuses on CUDA
// (DeviceError) is reported as {"error": message} in its entry.
#pragma once

#include <nlohmann/json.hpp>

#include "bench/benchmarks.h"

namespace aimc::bench {

// tile_forward_cuda: eval forward of AnalogLinear (default InferenceRPUConfig,
// 512 x 512 tiles) on CUDA at batch 4096 for one 512 x 512 tile and a
// 4096 x 4096 layer on 64 tiles, against cuBLAS SGEMM of the same shape
// (ratio, target <= 1.3). --quick: 64 x 64 tiles, a 128 x 128 layer, batch 64.
nlohmann::json bench_forward_cuda(const BenchOptions& o);

// program_drift_cuda: program_analog_weights() and drift_analog_weights(1 day)
// of the 4096 x 4096 layer on 64 tiles on CUDA (ms, ns per weight), the same
// on the CPU in the same run, and the bytes the layer holds on the GPU.
// --quick: a 128 x 128 layer on 64 x 64 tiles.
nlohmann::json bench_program_drift_cuda(const BenchOptions& o);

}  // namespace aimc::bench
