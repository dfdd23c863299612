// The GPU entries of `aimc bench` (see gpu_benchmarks.h). Times are wall
// seconds of the best of several runs after two warm-up runs, each ended by
// a device synchronisation; the reference and the analog step alternate so a
// change of load on the machine affects both alike.
#include "bench/gpu_benchmarks.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <unordered_set>

#include "engine/autograd.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "engine/runtime.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/backend.h"
#include "layers/config/rpu_config.h"
#include "layers/modules/analog_linear.h"
#include "layers/tiles/tile_array.h"

namespace aimc::bench {
namespace {

using clock_type = std::chrono::steady_clock;
constexpr double kTargetRatio = 1.3;  // analog forward / SGEMM of the same shape (issue 11)
constexpr const char* kSkipped = "no usable GPU (or a CPU-only build)";

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Best seconds of f() and g() over reps alternating runs after two warm-ups;
// each run ends with a device synchronisation.
template <class F, class G>
std::pair<double, double> best_alternating(int reps, F&& f, G&& g) {
  double best_f = 1e30, best_g = 1e30;
  for (int r = 0; r < reps + 2; ++r) {
    auto t0 = clock_type::now();
    f();
    cuda::backend().synchronize();
    const double sf = seconds_since(t0);
    t0 = clock_type::now();
    g();
    cuda::backend().synchronize();
    const double sg = seconds_since(t0);
    if (r >= 2) {
      best_f = std::min(best_f, sf);
      best_g = std::min(best_g, sg);
    }
  }
  return {best_f, best_g};
}

template <class F>
double best_of(int reps, int warmups, bool gpu, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps + warmups; ++r) {
    const auto t0 = clock_type::now();
    f();
    if (gpu) cuda::backend().synchronize();
    if (r >= warmups) best = std::min(best, seconds_since(t0));
  }
  return best;
}

// The default InferenceRPUConfig on tiles of at most tile x tile.
InferenceRPUConfig tiled_config(std::int64_t tile) {
  InferenceRPUConfig config;
  config.mapping.max_input_size = tile;
  config.mapping.max_output_size = tile;
  return config;
}

// Bytes of the layer's parameters and buffers (each storage once): what the
// layer holds on its device, scratch buffers of a pass aside.
std::int64_t layer_bytes(const Module& layer) {
  std::unordered_set<const Storage*> seen;
  std::int64_t bytes = 0;
  for (const auto& list : {layer.named_parameters(), layer.named_buffers()})
    for (const auto& [name, t] : list)
      if (t.defined() && seen.insert(t.storage().get()).second)
        bytes += static_cast<std::int64_t>(t.storage()->bytes());
  return bytes;
}

// One AnalogLinear size x size on tile x tile tiles, eval forward of
// X[batch, size] on CUDA, against cuBLAS SGEMM Y = X Wᵀ of the same shape.
nlohmann::json forward_case(std::int64_t size, std::int64_t tile, std::int64_t batch, const BenchOptions& o) {
  nlohmann::json j{{"matrix", {size, size}}, {"tile", {tile, tile}}, {"batch", batch}};
  try {
    Generator g(o.seed, 9);
    AnalogLinear layer(size, size, false, tiled_config(tile), g);
    layer.eval();
    NoGradGuard no_grad;
    j["tiles"] = layer.tile_array().grid().tiles();
    const Device gpu = bench_gpu(o);
    use_cuda_device(gpu);
    layer.to(gpu);
    const Tensor x = g.normal({batch, size}).to(gpu);
    const double bound = 1.0 / std::sqrt(double(size));
    const Tensor w = g.uniform({size, size}, -bound, bound).to(gpu);
    Tensor y = Tensor::empty({batch, size}, DType::Float32, gpu);
    auto sgemm = [&] {
      cuda::backend().gemm(cpu::gemm_shape(false, true, batch, size, size), 1.0f, x.data<float>(), w.data<float>(),
                           0.0f, y.data<float>());
    };
    auto analog = [&] { (void)layer.forward(x); };
    const auto [gemm_s, analog_s] = best_alternating(o.quick ? 2 : 20, sgemm, analog);
    const double flops = 2.0 * double(batch) * double(size) * double(size);
    j["seconds"] = analog_s;
    j["gflops"] = flops / analog_s / 1e9;
    j["sgemm_seconds"] = gemm_s;
    j["ratio_to_sgemm"] = analog_s / gemm_s;
    j["target_ratio"] = kTargetRatio;
    j["meets_target"] = o.quick ? nlohmann::json(nullptr) : nlohmann::json(analog_s / gemm_s <= kTargetRatio);
    j["layer_gpu_bytes"] = layer_bytes(layer);
  } catch (const DeviceError& e) {
    j["error"] = std::string("DeviceError: ") + e.what();  // a step this build cannot run on CUDA yet
  }
  return j;
}

}  // namespace

nlohmann::json bench_forward_cuda(const BenchOptions& o) {
  const std::string name = "tile_forward_cuda";
  if (!cuda_available()) return {{"name", name}, {"skipped", kSkipped}};
  const std::int64_t tile = o.quick ? 64 : 512, layer = o.quick ? 128 : 4096, batch = o.quick ? 64 : 4096;
  return {{"name", name},
          {"device", bench_gpu(o).str()},
          {"config", "InferenceRPUConfig defaults (NM ABS_MAX, BM ITERATIVE, inp_res 1/126, out_res 1/510, "
                     "out_noise 0.06), AnalogLinear eval forward, no bias"},
          {"data", "x ~ N(0,1), W from the layer's init"},
          {"reference", "cuBLAS SGEMM (FP32, no TF32) of the same [batch, in] x [in, out]"},
          {"single_tile", forward_case(tile, tile, batch, o)},
          {"layer", forward_case(layer, tile, batch, o)}};
}

nlohmann::json bench_program_drift_cuda(const BenchOptions& o) {
  const std::string name = "program_drift_cuda";
  if (!cuda_available()) return {{"name", name}, {"skipped", kSkipped}};
  const std::int64_t size = o.quick ? 128 : 4096, tile = o.quick ? 64 : 512;
  const double weights = double(size) * double(size);
  const Device gpu = bench_gpu(o);
  nlohmann::json j{{"name", name},
                   {"device", gpu.str()},
                   {"matrix", {size, size}},
                   {"tile", {tile, tile}},
                   {"config", "InferenceRPUConfig defaults: PCMLikeNoiseModel, SinglePairConductanceConverter, "
                              "GlobalDriftCompensation (each step includes the identity-batch readout)"},
                   {"drift_time_seconds", 86400.0}};
  try {
    Generator g(o.seed, 9);
    AnalogLinear on_cpu(size, size, false, tiled_config(tile), g);
    on_cpu.eval();
    NoGradGuard no_grad;
    Generator g2(o.seed, 9);
    AnalogLinear on_gpu(size, size, false, tiled_config(tile), g2);
    on_gpu.eval();
    j["tiles"] = on_gpu.tile_array().grid().tiles();
    use_cuda_device(gpu);
    on_gpu.to(gpu);
    const int reps = o.quick ? 1 : 5;
    const double program_s = best_of(reps, 1, true, [&] { on_gpu.program_analog_weights(); });
    const double drift_s = best_of(reps, 1, true, [&] { on_gpu.drift_analog_weights(86400.0); });
    j["program_ms"] = program_s * 1e3;
    j["drift_ms"] = drift_s * 1e3;
    j["program_ns_per_weight"] = program_s / weights * 1e9;
    j["drift_ns_per_weight"] = drift_s / weights * 1e9;
    j["programs_on_gpu"] = on_gpu.analog_tiles().at(0)->programs_on_gpu();
    j["layer_gpu_bytes"] = layer_bytes(on_gpu);  // weights and the programming state (conductances, ν, read weights)
    // The CPU twin in the same run: one run each (about a second on a few cores).
    const double cpu_program_s = best_of(1, 0, false, [&] { on_cpu.program_analog_weights(); });
    const double cpu_drift_s = best_of(1, 0, false, [&] { on_cpu.drift_analog_weights(86400.0); });
    j["cpu_program_ms"] = cpu_program_s * 1e3;
    j["cpu_drift_ms"] = cpu_drift_s * 1e3;
    j["cpu_threads"] = num_threads();
    j["speedup_program"] = cpu_program_s / program_s;
    j["speedup_drift"] = cpu_drift_s / drift_s;
  } catch (const DeviceError& e) {
    j["error"] = std::string("DeviceError: ") + e.what();
  }
  return j;
}

}  // namespace aimc::bench
