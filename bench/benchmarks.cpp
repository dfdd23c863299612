// The benchmark entries of `aimc bench` (see benchmarks.h).
//
//   gemm          C[512,512] = A[512,256] B[256,512] in float32: GFLOP/s and
//                 the fraction of the measured FMA peak of this CPU.
//   epoch_mlp     one training epoch of mlp on Fashion-MNIST, batch 64, Adam.
//   epoch_lenet5  the same for lenet5.
// Times are wall seconds (best of several runs for gemm); memory in bytes.
#include "bench/benchmarks.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <fstream>
#include <thread>

#include "bench/gpu_benchmarks.h"
#include "bench/peak.h"
#include "convert/models.h"
#include "engine/dispatch.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "engine/runtime.h"
#include "engine/storage.h"
#include "kernels/cpu/analog_mvm.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/backend.h"
#include "engine/autograd.h"
#include "convert/conversion.h"
#include "layers/devices/tile_device.h"
#include "layers/modules/analog_linear.h"
#include "layers/tiles/tile_array.h"
#include "tools/training/trainer.h"

namespace aimc::bench {
namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

long max_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss * 1024L;
}

double cached_peak = 0;
double fma_peak() {
  if (cached_peak == 0) cached_peak = measured_fma_peak_gflops(num_threads());
  return cached_peak;
}

nlohmann::json bench_gemm(const BenchOptions& o) {
  const std::int64_t m = 512, n = 512, k = 256;
  Generator g(o.seed, 7);
  Tensor a = g.normal({m, k}), b = g.normal({k, n}), c = Tensor::zeros({m, n});
  const auto shape = cpu::gemm_shape(false, false, m, n, k);
  const int reps = o.quick ? 5 : 50;
  double best = 1e30;
  for (int r = 0; r < reps + 2; ++r) {
    const auto t0 = clock_type::now();
    cpu::gemm(shape, 1.0f, a.data<float>(), b.data<float>(), 0.0f, c.data<float>());
    if (r >= 2) best = std::min(best, seconds_since(t0));  // two warm-up runs
  }
  const double gflop = 2.0 * m * n * k / 1e9;
  const double gflops = gflop / best;
  return {{"name", "gemm"},
          {"shape", {m, n, k}},
          {"seconds", best},
          {"gflops", gflops},
          {"peak_gflops_measured", fma_peak()},
          {"fraction_of_peak", gflops / fma_peak()},
          {"bytes", (m * k + k * n + m * n) * 4}};
}

// One training epoch of a named model on the training split. Digital with
// Adam (lr 1e-3) by default; with an RPU config the model is converted to
// analog tiles first and trained with the given optimizer.
nlohmann::json bench_epoch(const std::string& name, const std::string& model_name, double target_seconds,
                           const BenchOptions& o, const RPUConfig* rpu_config = nullptr,
                           const std::string& optimizer_name = "adam", double lr = 1e-3) {
  const std::string dir = data::dataset_dir(o.dataset);
  data::Dataset train = data::load_mnist_split(dir, "train");
  if (o.quick) train = data::head(train, 2048);
  training::TrainOptions opts;
  opts.model = model_name;
  opts.batch_size = 64;
  opts.optimizer = optimizer_name;
  opts.momentum = 0;
  opts.lr = lr;
  Generator init(o.seed, 1);
  auto model = build_model(model_name, init);
  if (rpu_config) {
    Generator analog_gen(o.seed, kAnalogConversionStream);
    convert_to_analog(model, *rpu_config, analog_gen);
  }
  auto optimizer = training::make_optimizer(opts, *model);
  data::BatchLoader loader(train, opts.batch_size, true, Generator(o.seed, 2));
  Storage::reset_peak_cpu_bytes();
  const std::size_t before = Storage::live_cpu_bytes();
  const auto t0 = clock_type::now();
  const training::EpochStats s = training::train_epoch(*model, *optimizer, loader, 0);
  const double secs = seconds_since(t0);
  const std::int64_t params = model->num_parameters();
  nlohmann::json j = {{"name", name},
                      {"model", model_name},
                      {"samples", train.size()},
                      {"batch_size", opts.batch_size},
                      {"optimizer", optimizer->type_name()},
                      {"lr", lr},
                      {"seconds", secs},
                      {"samples_per_second", double(train.size()) / secs},
                      {"train_loss", s.train_loss},
                      {"parameter_bytes", params * 4},
                      {"peak_tensor_bytes_above_dataset", Storage::peak_cpu_bytes() - before},
                      {"max_rss_bytes", max_rss_bytes()},
                      {"target_seconds", target_seconds},
                      {"meets_target", o.quick ? nlohmann::json(nullptr) : nlohmann::json(secs <= target_seconds)}};
  if (rpu_config) j["rpu_config"] = rpu_config->family();
  return j;
}

// Best-of-reps seconds of f() after two warm-up calls.
template <class F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps + 2; ++r) {
    const auto t0 = clock_type::now();
    f();
    if (r >= 2) best = std::min(best, seconds_since(t0));
  }
  return best;
}

// Best-of-reps seconds of f() and of g(), measured alternately (f, g, f, g,
// ...) after two warm-up rounds, so that a change in machine load affects
// both alike and their ratio stays meaningful on a shared machine.
template <class F, class G>
std::pair<double, double> best_seconds_alternating(int reps, F&& f, G&& g) {
  double best_f = 1e30, best_g = 1e30;
  for (int r = 0; r < reps + 2; ++r) {
    auto t0 = clock_type::now();
    f();
    const double sf = seconds_since(t0);
    t0 = clock_type::now();
    g();
    const double sg = seconds_since(t0);
    if (r >= 2) {
      best_f = std::min(best_f, sf);
      best_g = std::min(best_g, sg);
    }
  }
  return {best_f, best_g};
}

// The pulsed update of one 512x512 ConstantStepDevice tile (default device
// and UpdateParameters: desired_bl 31, BL and update management on), batch
// 64, lr 0.05, x ~ U(0, 1) (sigmoid activations), d ~ N(0, 0.001²) (errors
// of a hidden layer under a batch-mean loss), against the float rank-64
// update W -= lr·dᵀx (one GEMM) of the same tile, timed alternately.
nlohmann::json bench_pulsed_update(const BenchOptions& o) {
  const std::int64_t size = 512, batch = 64;
  const float lr = 0.05f;
  IOParameters perfect;
  perfect.is_perfect = true;
  AnalogTile tile(size, size, perfect, perfect, o.seed, 0);
  const UpdateParameters up;
  tile.set_device(*make_device_model(nlohmann::json{{"type", "ConstantStepDevice"}}), up.kernel_params());
  Generator g(o.seed, 9);
  const Tensor x = g.uniform({batch, size}), d = g.normal({batch, size}, 0., 1e-3);
  Tensor w = Tensor::zeros({size, size});
  auto float_update = [&] {
    cpu::gemm(cpu::gemm_shape(true, false, size, size, batch), -lr, d.data<float>(), x.data<float>(), 1.0f,
              w.data<float>());
  };
  auto pulsed = [&] {
    tile.record_update(x, d);
    tile.apply_updates(lr);
  };
  const int reps = o.quick ? 2 : 30;
  const auto [float_s, pulsed_s] = best_seconds_alternating(reps, float_update, pulsed);
  // The pulses of one more update (the mean count, measured from the weight change).
  const Tensor before = tile.weight().clone();
  pulsed();
  double moved = 0;
  const auto a = before.to_vector(), b = tile.weight().to_vector();
  for (std::size_t k = 0; k < a.size(); ++k) moved += std::abs(double(b[k]) - a[k]);
  const double pulses = moved / 0.001;  // mean step dw_min (ConstantStep, c2c noise averages out)
  const double per_pulse_ns = pulsed_s / std::max(1.0, pulses) * 1e9;
  return {{"name", "pulsed_update"},
          {"tile", {size, size}},
          {"batch", batch},
          {"device", "ConstantStepDevice (aihwkit defaults: dw_min 0.001, dw_min_std 0.3, dtod 0.3)"},
          {"update", "UpdateParameters defaults (STOCHASTIC_COMPRESSED, desired_bl 31, BL and update management)"},
          {"data", "x ~ U(0,1), d ~ N(0, 0.001^2), lr 0.05"},
          {"pulses_per_update_approx", pulses},
          {"ns_per_pulse", per_pulse_ns},
          {"seconds", pulsed_s},
          {"float_update_seconds", float_s},
          {"ratio_to_float_update", pulsed_s / float_s},
          {"target_ratio", 8.0},
          {"hidden_parameter_bytes", 7 * size * size * 4},
          {"weight_bytes", size * size * 4}};
}

// Analog forward (or backward) of an [out, in] matrix on tiles of at most
// tile x tile, batch 256, default InferenceRPUConfig forward IO (ABS_MAX noise
// management, ITERATIVE bound management, 7-bit DAC, 9-bit ADC, out_noise
// 0.06), against one plain float GEMM of the whole [256, in] x [in, out].
nlohmann::json bench_tiles(const std::string& name, std::int64_t size, std::int64_t tile, bool backward,
                           const BenchOptions& o) {
  const std::int64_t batch = 256;
  const IOParameters io;  // defaults = InferenceRPUConfig().forward
  TileArray array(make_tile_grid(size, size, tile, tile), io, io, o.seed, 0);
  Generator g(o.seed, 9);
  // Weights as PyTorch's default init of a layer with `size` inputs.
  const double bound = 1.0 / std::sqrt(double(size));
  array.set_weights(g.uniform({size, size}, -bound, bound));
  Tensor x = g.normal({batch, size}), y = Tensor::empty({batch, size});
  const int reps = o.quick ? 2 : (size > 1024 ? 5 : 30);
  // Reference: the same product as one float GEMM.
  Tensor w = array.get_weights();
  auto gemm = [&] {
    cpu::gemm(cpu::gemm_shape(false, true, batch, size, size), 1.0f, x.data<float>(), w.data<float>(), 0.0f,
              y.data<float>());
  };
  AnalogTile& t = array.tile(0, 0);
  auto analog = [&] {
    if (backward) t.backward(x.data<float>(), batch, y.data<float>(), true);
    else (void)array.forward(x, /*is_test=*/true);
  };
  const auto [gemm_s, analog_s] = best_seconds_alternating(reps, gemm, analog);
  const double flops = 2.0 * batch * double(size) * double(size);
  return {{"name", name},
          {"matrix", {size, size}},
          {"tile", {tile, tile}},
          {"tiles", array.grid().tiles()},
          {"batch", batch},
          {"io", "InferenceRPUConfig forward defaults (NM ABS_MAX, BM ITERATIVE, inp_res 1/126, out_res 1/510, out_noise 0.06)"},
          {"data", "x ~ N(0,1), W ~ U(-1/sqrt(in), 1/sqrt(in))"},
          {"seconds", analog_s},
          {"gflops", flops / analog_s / 1e9},
          {"gemm_seconds", gemm_s},
          {"ratio_to_gemm", analog_s / gemm_s},
          {"bytes", size * size * 4}};
}

// The analog backward of one size x size tile on CUDA
// (kernels/cuda/analog_mvm.cu), batch 256, default InferenceRPUConfig forward
// IO, against one cuBLAS GEMM of the same shape on the same GPU, timed
// alternately. Skipped (with the reason) without a usable GPU.
nlohmann::json bench_tile_cuda(const std::string& name, std::int64_t size, bool backward, const BenchOptions& o) {
  if (!cuda_available()) return {{"name", name}, {"skipped", "no usable GPU (or a CPU-only build)"}};
  const std::int64_t batch = 256;
  const IOParameters io;
  Generator g(o.seed, 9);
  const double bound = 1.0 / std::sqrt(double(size));
  const Device gpu = bench_gpu(o);
  use_cuda_device(gpu);
  const Tensor w = g.uniform({size, size}, -bound, bound).to(gpu);
  const Tensor x = g.normal({batch, size}).to(gpu);
  Tensor y = Tensor::empty({batch, size}, DType::Float32, gpu);
  const int reps = o.quick ? 2 : 50;
  std::uint64_t offset = 0;
  auto gemm = [&] {
    cuda::backend().gemm(cpu::gemm_shape(false, !backward, batch, size, size), 1.0f, x.data<float>(), w.data<float>(),
                         0.0f, y.data<float>());
    cuda::backend().synchronize();
  };
  auto analog = [&] {
    const cpu::AnalogRandom rnd{o.seed, 1, offset};
    const cpu::AnalogMvmStats s =
        backward ? cuda::backend().analog_mvm_backward(io, w.data<float>(), size, size, x.data<float>(), batch,
                                                       y.data<float>(), {}, rnd, nullptr)
                 : cuda::backend().analog_mvm_forward(io, w.data<float>(), size, size, x.data<float>(), batch,
                                                      y.data<float>(), {}, rnd, nullptr);
    offset += s.blocks;
  };
  const auto [gemm_s, analog_s] = best_seconds_alternating(reps, gemm, analog);
  const double flops = 2.0 * batch * double(size) * double(size);
  return {{"name", name},
          {"device", gpu.str()},
          {"matrix", {size, size}},
          {"tile", {size, size}},
          {"batch", batch},
          {"io", "InferenceRPUConfig forward defaults (NM ABS_MAX, BM ITERATIVE, inp_res 1/126, out_res 1/510, out_noise 0.06)"},
          {"seconds", analog_s},
          {"gflops", flops / analog_s / 1e9},
          {"gemm_seconds", gemm_s},
          {"ratio_to_gemm", analog_s / gemm_s},
          {"bytes", size * size * 4}};
}

// Inference programming of a size x size AnalogLinear with the default
// InferenceRPUConfig (PCM noise model, single-pair converter, global drift
// compensation, 512 x 512 tiles): program_analog_weights() and one
// drift_analog_weights(1 day), each against one eval forward of batch 256.
// Both include the drift-compensation readout (an identity batch per tile).
nlohmann::json bench_program_drift(const BenchOptions& o) {
  const std::int64_t size = o.quick ? 1024 : 4096, batch = 256;
  InferenceRPUConfig config;
  config.mapping.max_input_size = 512;
  config.mapping.max_output_size = 512;
  Generator g(o.seed, 9);
  AnalogLinear layer(size, size, false, config, g);
  layer.eval();
  NoGradGuard no_grad;
  Tensor x = g.normal({batch, size});
  const int reps = o.quick ? 1 : 3;
  const double forward_s = best_seconds(reps, [&] { (void)layer.forward(x); });
  const double program_s = best_seconds(reps, [&] { layer.program_analog_weights(); });
  const double drift_s = best_seconds(reps, [&] { layer.drift_analog_weights(86400.0); });
  std::int64_t programming_bytes = 0;
  // Every buffer but the tiles' running state (counters, running values, seeds).
  auto is_tile_state = [&](const std::string& name) {
    for (const auto& [entry, t] : layer.tile_array().tile(0, 0).state().entries())
      if (name.size() > entry.size() && name.compare(name.size() - entry.size(), entry.size(), entry) == 0 &&
          name[name.size() - entry.size() - 1] == '_')
        return true;
    return false;
  };
  for (const auto& [name, t] : layer.named_buffers())
    if (!is_tile_state(name)) programming_bytes += t.numel() * static_cast<std::int64_t>(dtype_size(t.dtype()));
  return {{"name", "program_drift"},
          {"matrix", {size, size}},
          {"tile", {512, 512}},
          {"tiles", layer.tile_array().grid().tiles()},
          {"config", "InferenceRPUConfig defaults: PCMLikeNoiseModel, SinglePairConductanceConverter, GlobalDriftCompensation"},
          {"program_seconds", program_s},
          {"drift_seconds", drift_s},
          {"forward_seconds_batch_256", forward_s},
          {"program_ratio_to_forward", program_s / forward_s},
          {"drift_ratio_to_forward", drift_s / forward_s},
          {"weight_bytes", size * size * 4},
          {"programming_state_bytes", programming_bytes}};
}

// One training epoch of lenet5 on the GPU (batch 64, Adam lr 1e-3, seed
// o.seed) after a 4-batch warm-up: digital, and hardware-aware
// (InferenceRPUConfig; "refused: <why>" where analog layers cannot train on
// CUDA), against the CPU's epoch in the same run (its first quarter, scaled
// to the epoch) and the best of 10 cuBLAS SGEMMs 4096³. Fashion-MNIST's
// training split when present, else synthetic data of its shape. --quick:
// 1024 samples, a 1-batch warm-up, and the hardware-aware epoch on the first
// 128 (the host emulation of the GPU runs analog tiles slowly).
nlohmann::json bench_epoch_lenet5_cuda(const BenchOptions& o) {
  const std::string name = "epoch_lenet5_cuda";
  if (!cuda_available()) return {{"name", name}, {"skipped", "no usable GPU (or a CPU-only build)"}};
  data::Dataset train;
  std::string source;
  try {
    train = data::load_mnist_split(data::dataset_dir(o.dataset), "train");
    source = o.dataset + " train split";
  } catch (const IoError&) {
    // 60000 images [1, 28, 28] ~ U(0, 1), labels ~ U{0..9} (seed o.seed, stream 3).
    Generator g(o.seed, 3);
    std::vector<std::uint32_t> labels(60000);
    g.integers(labels.data(), 60000, 10);
    train.images = g.uniform({60000, 1, 28, 28});
    train.labels = Tensor::from_vector(std::vector<std::int32_t>(labels.begin(), labels.end()), {60000});
    source = "synthetic (no " + o.dataset + " here): 60000 images U(0,1) [1, 28, 28], labels U{0..9}";
  }
  if (o.quick) train = data::head(train, 256);  // 4 batches: a smoke run (the emulated GPU is slow)
  training::TrainOptions opts;
  opts.model = "lenet5";
  opts.batch_size = 64;
  opts.optimizer = "adam";
  opts.lr = 1e-3;
  // Seconds and mean loss of one epoch over `d` on `device`.
  auto epoch = [&](const data::Dataset& d, Device device, const RPUConfig* config) {
    Generator init(o.seed, 1);
    auto model = build_model("lenet5", init);
    if (config) {
      Generator analog_gen(o.seed, kAnalogConversionStream);
      convert_to_analog(model, *config, analog_gen);
    }
    auto optimizer = training::make_optimizer(opts, *model);
    model->to(device);
    optimizer->to(device);
    if (device.is_cuda()) {
      const std::int64_t warm_batches = o.quick ? 1 : 4;
      data::BatchLoader warm(data::head(d, warm_batches * opts.batch_size), opts.batch_size, true,
                             Generator(o.seed, 4));
      training::train_epoch(*model, *optimizer, warm, 0);
      cuda::backend().synchronize();
    }
    data::BatchLoader loader(d, opts.batch_size, true, Generator(o.seed, 2));
    const auto t0 = clock_type::now();
    const training::EpochStats s = training::train_epoch(*model, *optimizer, loader, 0);
    if (device.is_cuda()) cuda::backend().synchronize();
    return std::pair<double, double>{seconds_since(t0), s.train_loss};
  };
  const Device gpu = bench_gpu(o);
  use_cuda_device(gpu);
  const auto [gpu_s, gpu_loss] = epoch(train, gpu, nullptr);
  const std::int64_t cpu_samples = std::max<std::int64_t>(opts.batch_size, train.size() / 4);
  const auto [cpu_s, cpu_loss] = epoch(data::head(train, cpu_samples), Device::cpu(), nullptr);
  const double cpu_epoch_s = cpu_s * double(train.size()) / double(cpu_samples);
  nlohmann::json hwa;
  try {
    const RPUConfig inference = InferenceRPUConfig{};
    const data::Dataset hwa_train = o.quick ? data::head(train, 2 * opts.batch_size) : train;
    const auto [hwa_s, hwa_loss] = epoch(hwa_train, gpu, &inference);
    hwa = {{"samples", hwa_train.size()},
           {"seconds", hwa_s},
           {"samples_per_second", double(hwa_train.size()) / hwa_s},
           {"train_loss", hwa_loss}};
  } catch (const DeviceError& e) {
    hwa = std::string("refused: ") + e.what();
  }
  const std::int64_t n = o.quick ? 256 : 4096;
  Generator g(o.seed, 9);
  use_cuda_device(gpu);  // the CPU epoch above ran in between
  const Tensor a = g.normal({n, n}).to(gpu), b = g.normal({n, n}).to(gpu);
  Tensor c = Tensor::empty({n, n}, DType::Float32, gpu);
  const double sgemm_s = best_seconds(o.quick ? 2 : 10, [&] {
    cuda::backend().gemm(cpu::gemm_shape(false, false, n, n, n), 1.0f, a.data<float>(), b.data<float>(), 0.0f,
                         c.data<float>());
    cuda::backend().synchronize();
  });
  return {{"name", name},
          {"device", gpu.str()},
          {"model", "lenet5"},
          {"data", source},
          {"samples", train.size()},
          {"batch_size", opts.batch_size},
          {"optimizer", "Adam"},
          {"lr", opts.lr},
          {"seconds", gpu_s},
          {"samples_per_second", double(train.size()) / gpu_s},
          {"train_loss", gpu_loss},
          {"cpu", {{"samples", cpu_samples},
                   {"seconds", cpu_s},
                   {"epoch_seconds_scaled", cpu_epoch_s},
                   {"train_loss", cpu_loss},
                   {"threads", num_threads()}}},
          {"speedup_over_cpu", cpu_epoch_s / gpu_s},
          {"hwa_inference_rpu_config", hwa},
          {"sgemm_peak", {{"shape", {n, n, n}}, {"seconds", sgemm_s}, {"tflops", 2.0 * n * n * n / sgemm_s / 1e12}}}};
}

}  // namespace

Device bench_gpu(const BenchOptions& options) {
  return options.device.is_cuda() ? options.device : Device::cuda(0);
}

bool is_gpu_benchmark(const std::string& name) {
  const std::string suffix = "_cuda";
  return name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> benchmark_names() {
  return {"gemm",          "epoch_mlp",         "epoch_lenet5",      "tile_forward",  "array_forward",
          "tile_backward", "program_drift",     "pulsed_update",     "epoch_mlp_pulsed", "tile_forward_cuda",
          "tile_backward_cuda", "program_drift_cuda", "epoch_lenet5_cuda"};
}

nlohmann::json machine_description() {
  return {{"cpu", cpu_model()},
          {"hardware_threads", std::thread::hardware_concurrency()},
          {"threads_used", num_threads()},
          {"fma_peak_gflops_measured", fma_peak()},
          {"cuda_available", cuda_available()},
          {"aimc_version", version()}};
}

nlohmann::json run_benchmarks(const std::vector<std::string>& names_in, const BenchOptions& options) {
  const auto known = benchmark_names();
  std::vector<std::string> names = names_in;
  if (names.empty())
    for (const auto& k : known)
      if (is_gpu_benchmark(k) == options.device.is_cuda()) names.push_back(k);
  auto listed = [&](bool gpu) {
    std::string list;
    for (const auto& k : known)
      if (is_gpu_benchmark(k) == gpu || !gpu) list += (list.empty() ? "" : ", ") + k;
    return list;
  };
  for (const auto& n : names) {
    if (std::find(known.begin(), known.end(), n) == known.end())
      throw UsageError("unknown benchmark '" + n + "' (known: " + listed(false) + ")");
    if (options.device.is_cuda() && !is_gpu_benchmark(n))
      throw UsageError("benchmark '" + n + "' runs on the CPU only, not on --device " + options.device.str() +
                       " (GPU entries: " + listed(true) + "; run '" + n + "' with --device cpu)");
  }
  nlohmann::json results = nlohmann::json::object();
  for (const auto& n : names) {
    if (n == "gemm") results[n] = bench_gemm(options);
    else if (n == "epoch_mlp") results[n] = bench_epoch(n, "mlp", 3.0, options);
    else if (n == "epoch_lenet5") results[n] = bench_epoch(n, "lenet5", 6.0, options);
    else if (n == "pulsed_update") results[n] = bench_pulsed_update(options);
    else if (n == "epoch_mlp_pulsed") {
      // The acceptance run's epoch: mlp_sigmoid on SingleRPUConfig (ConstantStepDevice), AnalogSGD lr 0.05.
      const RPUConfig single = SingleRPUConfig{};
      results[n] = bench_epoch(n, "mlp_sigmoid", 1.5, options, &single, "sgd", 0.05);
    }
    else if (n == "tile_forward") results[n] = bench_tiles(n, 512, 512, false, options);
    else if (n == "array_forward") results[n] = bench_tiles(n, options.quick ? 1024 : 4096, 512, false, options);
    else if (n == "tile_backward") results[n] = bench_tiles(n, 512, 512, true, options);
    else if (n == "program_drift") results[n] = bench_program_drift(options);
    else if (n == "tile_forward_cuda") results[n] = bench_forward_cuda(options);
    else if (n == "program_drift_cuda") results[n] = bench_program_drift_cuda(options);
    else if (n == "tile_backward_cuda") results[n] = bench_tile_cuda(n, 512, true, options);
    else if (n == "epoch_lenet5_cuda") results[n] = bench_epoch_lenet5_cuda(options);
  }
  nlohmann::json device = {{"device", options.device.str()}};
  if (options.device.is_cuda()) {
    char gpu_name[256];
    cuda::backend().device_name(options.device.index, gpu_name, sizeof gpu_name);
    device["gpu_name"] = std::string(gpu_name);
    device["gpus_found"] = cuda::backend().device_count();
  }
  return {{"machine", machine_description()}, {"seed", options.seed}, {"device", device}, {"benchmarks", results}};
}

}  // namespace aimc::bench
