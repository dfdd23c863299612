// Benchmarks of aimc, each compared in the same run with a local physical
// reference (the measured FMA peak of this CPU, a plain float GEMM).
// Each returns one JSON object; run_benchmarks collects the named entries.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aimc::bench {

struct BenchOptions {
  std::string dataset = "fashion-mnist";
  std::uint64_t seed = 0;
  bool quick = false;  // fewer repetitions / samples (for tests)
};

// Known entry names: gemm, epoch_mlp, epoch_lenet5, tile_forward, array_forward,
// tile_backward, program_drift, pulsed_update, epoch_mlp_pulsed,
// tile_forward_cuda, tile_backward_cuda, program_drift_cuda (bench/gpu_benchmarks.h),
// epoch_lenet5_cuda (the CUDA ones report "skipped" without a GPU).
std::vector<std::string> benchmark_names();
// Runs the named entries (all when empty); unknown names -> UsageError.
nlohmann::json run_benchmarks(const std::vector<std::string>& names, const BenchOptions& options);

// The machine: CPU model, cores, threads used, measured FMA peak.
nlohmann::json machine_description();

}  // namespace aimc::bench
