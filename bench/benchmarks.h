// Benchmarks of aimc, each compared in the same run with a local physical
// reference (the measured FMA peak of this CPU, a plain float GEMM).
// Each returns one JSON object; run_benchmarks collects the named entries.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/dtype.h"

namespace aimc::bench {

struct BenchOptions {
  std::string dataset = "fashion-mnist";
  std::uint64_t seed = 0;
  bool quick = false;  // fewer repetitions / samples (for tests)
  // --device: cpu runs the CPU entries by default; cuda:I runs the GPU
  // entries (the *_cuda ones) on GPU I, and refuses a CPU entry by name.
  Device device = Device::cpu();
};

// The GPU a *_cuda entry runs on: options.device when it is a GPU, else cuda:0
// (a *_cuda entry named explicitly with --device cpu).
Device bench_gpu(const BenchOptions& options);

// Known entry names: gemm, epoch_mlp, epoch_lenet5, tile_forward, array_forward,
// tile_backward, program_drift, pulsed_update, epoch_mlp_pulsed,
// tile_forward_cuda, tile_backward_cuda, program_drift_cuda (bench/gpu_benchmarks.h),
// epoch_lenet5_cuda (the CUDA ones report "skipped" without a GPU).
std::vector<std::string> benchmark_names();
// The entries that run on a GPU (the *_cuda ones).
bool is_gpu_benchmark(const std::string& name);
// Runs the named entries; when none are named, the CPU entries (device cpu)
// or the GPU entries (device cuda:I). Unknown names, and a CPU entry named
// with a GPU device, -> UsageError naming them.
nlohmann::json run_benchmarks(const std::vector<std::string>& names, const BenchOptions& options);

// The machine: CPU model, cores, threads used, measured FMA peak.
nlohmann::json machine_description();

}  // namespace aimc::bench
