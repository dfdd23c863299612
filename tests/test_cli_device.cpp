// The aimc command line on a GPU (--device cpu|cuda|cuda:I): malformed
// values and a missing GPU refused; on the emulated GPU backend
// (AIMC_CUDA_LIBRARY=tests/libaimc_cuda_emulated.so) train, eval, drift and
// bench follow the CPU run, digital, hardware-aware and lightning-style.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "aimc_config.h"
#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/generator.h"
#include "engine/safetensors.h"
#include "kernels/cuda/backend.h"
#include "layers/config/rpu_config.h"
#include "tests/cli_test_common.h"

namespace fs = std::filesystem;
using namespace aimc_test;

TEST_CASE("--device: a malformed value is a usage error; cuda without a usable GPU a device error (exit 2)") {
  // --device is checked first, before the checkpoint or data set is read.
  const std::string missing = (tmp / "missing.safetensors").string();
  const std::vector<std::string> commands = {"train --epochs 1 --limit-train 64", "eval --checkpoint " + missing,
                                             "drift --checkpoint " + missing, "bench --quick"};
  for (const std::string& cmd : commands) {
    expect_usage_error(cmd + " --device gpu", {"aimc: usage error:", "--device 'gpu'", "cpu, cuda or cuda:I"});
    expect_usage_error(cmd + " --device cuda:", {"--device 'cuda:'"});
    expect_usage_error(cmd + " --device cuda:-1", {"--device 'cuda:-1'"});
  }
  if (aimc::cuda::gpu_available()) {
    // With a GPU, a CPU benchmark named with --device cuda is refused, naming it.
    expect_usage_error(commands[3] + " --device cuda gemm",
                       {"aimc: usage error:", "benchmark 'gemm' runs on the CPU only", "--device cpu"});
    return;
  }
  // The GPU benchmarks skip, saying why.
  const Run b = run("bench --quick --json epoch_lenet5_cuda");
  REQUIRE(b.code == 0);
  CHECK(last_json_line(b.out)["benchmarks"]["epoch_lenet5_cuda"]["skipped"].get<std::string>().find("no usable GPU") !=
        std::string::npos);
  for (const std::string& cmd : commands)
    for (const std::string device : {"cuda", "cuda:0", "cuda:3"})
      expect_usage_error(cmd + " --device " + device,
                         {"aimc: device error:", "--device " + device + ": no GPU found", "use --device cpu"});
}

TEST_CASE("--device cuda on an emulated GPU (AIMC_CUDA_LIBRARY): accepted, the model moves, unsupported work refused") {
  fs::create_directories(tmp);
  if (!AIMC_HAVE_CUDA) {
    // A build without CUDA has no backend loader: the emulated library is not even looked at.
    expect_usage_error("bench --quick --device cuda", {"aimc: device error:", "built without CUDA"},
                       std::string("AIMC_CUDA_LIBRARY=") + AIMC_CUDA_EMULATED_BACKEND + " ");
    return;
  }
  const std::string ckpt = (tmp / "device_mlp.safetensors").string();
  {
    aimc::Generator gen(3);
    auto model = aimc::build_model("mlp", gen);
    aimc::save_checkpoint(ckpt, *model, aimc::model_description("mlp"));
  }
  const std::string emulated = std::string("AIMC_CUDA_LIBRARY=") + AIMC_CUDA_EMULATED_BACKEND + " ";
  // One emulated GPU: index 1 is out of range.
  expect_usage_error("eval --checkpoint " + ckpt + " --device cuda:1",
                     {"aimc: device error:", "--device cuda:1: GPU index out of range (1 GPU(s) found)"}, emulated);
  expect_usage_error("train --epochs 1 --limit-train 64 --shards 2 --device cuda",
                     {"aimc: device error:", "--shards 2: data-parallel shards run on the CPU only"}, emulated);
}

namespace {

// Prefix of a command run on the emulated GPU backend (AIMC_CUDA_LIBRARY).
const std::string kEmulated = std::string("AIMC_CUDA_LIBRARY=") + AIMC_CUDA_EMULATED_BACKEND + " ";

// `aimc ARGS --json` on the emulated backend (env: more variables first);
// exit 0 required. Its JSON result.
nlohmann::json emulated_json(const std::string& args, const std::string& env = "") {
  const Run r = run_command(env + kEmulated + AIMC_CLI_PATH + " " + args + " --json", "/dev/null");
  INFO("aimc " << args);
  REQUIRE(r.code == 0);
  return last_json_line(r.out);
}

// `aimc train ARGS --out tmp/STEM_DEVICE.safetensors --device DEVICE` on the
// emulated backend: its JSON result and the checkpoint's path.
std::pair<nlohmann::json, std::string> train_emulated(const std::string& args, const std::string& stem,
                                                      const std::string& device, const std::string& env = "") {
  const std::string out = (tmp / (stem + "_" + device + ".safetensors")).string();
  return {emulated_json("train " + args + " --out " + out + " --device " + device, env), out};
}

// Every tensor of checkpoint b within rel·(|a| + the tensor's max |a|) of
// a's, under the same names in the same order. The names.
std::vector<std::string> check_checkpoints_close(const std::string& a_path, const std::string& b_path, float rel) {
  const auto a = aimc::read_safetensors(a_path).tensors, b = aimc::read_safetensors(b_path).tensors;
  REQUIRE(a.size() == b.size());
  std::vector<std::string> names;
  for (std::size_t k = 0; k < a.size(); ++k) {
    INFO(a[k].first);
    CHECK(a[k].first == b[k].first);
    names.push_back(a[k].first);
    const std::vector<float> x = a[k].second.to(aimc::DType::Float32).to_vector();
    const std::vector<float> y = b[k].second.to(aimc::DType::Float32).to_vector();
    REQUIRE(x.size() == y.size());
    float scale = 0.f;
    for (float v : x) scale = std::max(scale, std::abs(v));
    std::size_t bad = 0;
    for (std::size_t i = 0; i < x.size(); ++i) bad += !(std::abs(x[i] - y[i]) <= rel * (std::abs(x[i]) + scale));
    CHECK(bad == 0);
  }
  return names;
}

}  // namespace

// Digital training and evaluation on the (emulated) GPU follow the CPU run:
// the GPU's GEMMs sum in another order, so losses and weights agree within
// float rounding (1e-5 relative: 4 steps of an mlp or lenet5 with K <= 784
// sums move a value by a few ulp, ~1e-7, per op), and the accuracies are equal.
TEST_CASE("train and eval --device cuda of a digital model on an emulated GPU follow the CPU run") {
  if (!AIMC_HAVE_CUDA) return;  // no backend loader to point at the emulation (the case above checks the refusal)
  const std::string model = GENERATE(as<std::string>{}, "mlp", "lenet5");
  INFO("model " << model);
  const fs::path data = tmp / "device_train_data";
  write_varied_split(data, "train", 32);
  write_varied_split(data, "t10k", 16);
  const std::string args = "--model " + model + " --dataset mnist:" + data.string() +
                           " --epochs 1 --batch-size 8 --optimizer sgd --lr 0.05 --momentum 0.9";
  const std::string stem = "device_train_" + model;
  const auto [cpu, cpu_ckpt] = train_emulated(args, stem, "cpu");
  const auto [gpu, gpu_ckpt] = train_emulated(args, stem, "cuda");
  CHECK(cpu["train_loss"].get<double>() > 0.0);
  CHECK(gpu["train_loss"].get<double>() == Approx(cpu["train_loss"].get<double>()).epsilon(1e-5));
  CHECK(gpu["test_accuracy"].get<double>() == cpu["test_accuracy"].get<double>());
  // --device cuda:1 of two emulated GPUs runs there: the same kernels, so cuda:0's numbers.
  const auto gpu1 = train_emulated(args, stem, "cuda:1", "AIMC_CUDA_EMULATED_DEVICES=2 ").first;
  CHECK(gpu1["train_loss"].get<double>() == gpu["train_loss"].get<double>());
  CHECK(gpu1["test_accuracy"].get<double>() == gpu["test_accuracy"].get<double>());
  // The weights after 4 steps: >= 3 weights, 3 biases, the optimizer's momentum buffers.
  CHECK(check_checkpoints_close(cpu_ckpt, gpu_ckpt, 1e-5f).size() > 6);
  // eval of the CPU-trained checkpoint on the GPU: the CPU's accuracy.
  const std::string eval = "eval --checkpoint " + cpu_ckpt + " --dataset mnist:" + data.string() + " --device ";
  const auto e_cpu = emulated_json(eval + "cpu"), e_gpu = emulated_json(eval + "cuda");
  CHECK(e_gpu["test_accuracy"] == e_cpu["test_accuracy"]);
  CHECK(e_cpu["test_accuracy"] == cpu["test_accuracy"]);
}

// Trains the mlp with --rpu-config `config` on `data` for `epochs` epochs
// (batch 16, SGD lr 0.1) on the CPU and on the emulated GPU: the losses agree
// within 1e-5, the accuracies are equal and so is every checkpoint tensor
// (check_checkpoints_close, 1e-5). Returns the CPU checkpoint's path and how
// many learned input ranges were compared.
std::pair<std::string, std::size_t> check_emulated_training(const fs::path& data, const std::string& config, int epochs,
                                                            const std::string& stem) {
  const std::string args = "--model mlp --rpu-config " + config + " --dataset mnist:" + data.string() + " --epochs " +
                           std::to_string(epochs) + " --batch-size 16 --optimizer sgd --lr 0.1";
  const auto [cpu, cpu_ckpt] = train_emulated(args, stem, "cpu");
  const auto [gpu, gpu_ckpt] = train_emulated(args, stem, "cuda");
  CHECK(cpu["train_loss"].get<double>() > 0.0);
  CHECK(gpu["train_loss"].get<double>() == Approx(cpu["train_loss"].get<double>()).epsilon(1e-5));
  CHECK(gpu["test_accuracy"].get<double>() == cpu["test_accuracy"].get<double>());
  const std::vector<std::string> names = check_checkpoints_close(cpu_ckpt, gpu_ckpt, 1e-5f);
  return {cpu_ckpt, std::size_t(std::count_if(names.begin(), names.end(), [](const std::string& n) {
            return n.find("input_range") != std::string::npos;
          }))};
}

// Hardware-aware training (StandardHWATrainingPreset: input ranges learned
// from the data, weight modifier, clip) on the (emulated) GPU follows the
// CPU run: the analog kernels are the CPU's code under the emulation and
// only the digital sums (bias gradients, loss) add in another order, so the
// loss and every weight agree within 1e-5 (measured ~1e-7 per step); the
// accuracies are equal. eval --device cuda of the analog checkpoint gives the
// CPU's accuracy, and drift --device cuda (programming and drift through the
// host inside each tile, the forward on the GPU) the CPU's drift table, text
// for text, for the same seed.
TEST_CASE("train --rpu-config StandardHWATrainingPreset, eval and drift --device cuda on an emulated GPU follow the "
          "CPU run") {
  if (!AIMC_HAVE_CUDA) return;  // no backend loader to point at the emulation
  const fs::path data = tmp / "device_hwa_data";
  write_varied_split(data, "train", 160);  // its images encode the label: a model learns above chance
  write_varied_split(data, "t10k", 200);
  // (No structured binding: clang 14 does not let the drift lambda below capture one.)
  const auto trained = check_emulated_training(data, "StandardHWATrainingPreset", 2, "device_hwa");
  const std::string cpu_ckpt = trained.first;
  CHECK(trained.second > 0);  // the learned input ranges are among the compared tensors
  const std::string eval = "eval --checkpoint " + cpu_ckpt + " --dataset mnist:" + data.string() + " --device ";
  CHECK(emulated_json(eval + "cuda")["test_accuracy"] == emulated_json(eval + "cpu")["test_accuracy"]);
  // Re-mapped onto TorchInferenceRPUConfig tiles: the lightning-style forward runs inference on the GPU.
  const std::string lightning = " --rpu-config TorchInferenceRPUConfig";
  CHECK(emulated_json(eval + "cuda" + lightning)["test_accuracy"] ==
        emulated_json(eval + "cpu" + lightning)["test_accuracy"]);
  // The drift table of the CPU-trained checkpoint, 2 chips x 3 times, seed 5
  // (200 test images: the chips' programming noise and the drift move it).
  auto drift = [&](const std::string& device) {
    const std::string csv = (tmp / ("device_hwa_drift_" + device + ".csv")).string();
    const nlohmann::json j = emulated_json("drift --checkpoint " + cpu_ckpt + " --dataset mnist:" + data.string() +
                                           " --times 1,86400,1e8 --repeats 2 --seed 5 --csv " + csv + " --device " +
                                           device);
    return std::make_pair(j, slurp(csv));
  };
  const auto [d_cpu, table_cpu] = drift("cpu");
  const auto [d_gpu, table_gpu] = drift("cuda");
  CHECK(d_cpu["accuracy"].size() == 2);
  CHECK(d_gpu["accuracy"] == d_cpu["accuracy"]);
  CHECK(table_gpu == table_cpu);
  CHECK(std::count(table_cpu.begin(), table_cpu.end(), '\n') == 4);  // header + 3 times
  // Not a constant table: the chips or the times give different accuracies.
  std::set<double> seen;
  for (const auto& chip : d_cpu["accuracy"])
    for (const auto& v : chip) seen.insert(v.get<double>());
  CHECK(seen.size() > 1);
}

// bench --device cuda[:I] runs the GPU entries (the *_cuda ones) on GPU I of
// the emulated backend: numbers, not "skipped", and the JSON names the GPU.
// --quick sizes (a few seconds each on 2 cores).
TEST_CASE("bench --device cuda[:I] runs the GPU entries there; a CPU entry or a missing GPU index is refused") {
  if (!AIMC_HAVE_CUDA) return;  // no backend loader (the --device cases above check the refusal)
  const nlohmann::json j = emulated_json("bench --quick --device cuda");
  CHECK(j["device"]["device"] == "cuda:0");
  CHECK(j["device"]["gpus_found"] == 1);
  const nlohmann::json& b = j["benchmarks"];
  CHECK(b.size() == 4);  // the GPU entries only
  for (const std::string name : {"tile_forward_cuda", "tile_backward_cuda", "program_drift_cuda", "epoch_lenet5_cuda"}) {
    INFO(name);
    REQUIRE(b.contains(name));
    CHECK_FALSE(b[name].contains("skipped"));
    CHECK_FALSE(b[name].contains("error"));
    CHECK(b[name]["device"] == "cuda:0");
  }
  for (const std::string part : {"single_tile", "layer"}) {
    CHECK(b["tile_forward_cuda"][part]["seconds"].get<double>() > 0.0);
    CHECK(b["tile_forward_cuda"][part]["ratio_to_sgemm"].get<double>() > 0.0);
  }
  CHECK(b["tile_backward_cuda"]["seconds"].get<double>() > 0.0);
  CHECK(b["tile_backward_cuda"]["gemm_seconds"].get<double>() > 0.0);
  CHECK(b["program_drift_cuda"]["program_ms"].get<double>() > 0.0);
  CHECK(b["program_drift_cuda"]["drift_ms"].get<double>() > 0.0);
  CHECK(b["program_drift_cuda"]["tiles"] == 4);  // 128 x 128 on 64 x 64 tiles
  // The GPU epoch (--quick: 256 samples) beside the CPU's quarter, scaled by 4.
  const nlohmann::json& e = b["epoch_lenet5_cuda"];
  CHECK(e["samples"].get<int>() == 256);
  CHECK(e["seconds"].get<double>() > 0.0);
  const double loss = e["train_loss"].get<double>();
  CHECK((loss > 0.0 && loss < 2 * std::log(10.0)));  // below twice a uniform guess's cross-entropy
  CHECK(e["cpu"]["samples"].get<int>() == 64);
  CHECK(e["cpu"]["epoch_seconds_scaled"].get<double>() == Approx(4 * e["cpu"]["seconds"].get<double>()));
  CHECK(e["sgemm_peak"]["tflops"].get<double>() > 0.0);
  const nlohmann::json& hwa = e["hwa_inference_rpu_config"];
  REQUIRE(hwa.is_object());  // HWA training runs on the GPU
  CHECK(hwa["samples"].get<int>() == 128);
  CHECK(hwa["seconds"].get<double>() > 0.0);
  const double hwa_loss = hwa["train_loss"].get<double>();
  CHECK((hwa_loss > 0.0 && hwa_loss < 2 * std::log(10.0)));
  // cuda:1 of two emulated GPUs, one entry.
  const std::string two = "AIMC_CUDA_EMULATED_DEVICES=2 ";
  const nlohmann::json j1 = emulated_json("bench --quick --device cuda:1 tile_forward_cuda", two);
  CHECK(j1["device"]["device"] == "cuda:1");
  CHECK(j1["device"]["gpu_name"] == "aimc host emulation of a GPU (cuda:1)");  // the backend's name of GPU 1
  CHECK(j1["device"]["gpus_found"] == 2);
  CHECK(j1["benchmarks"].size() == 1);
  CHECK(j1["benchmarks"]["tile_forward_cuda"]["device"] == "cuda:1");
  CHECK(j1["benchmarks"]["tile_forward_cuda"]["layer"]["seconds"].get<double>() > 0.0);
  // A GPU entry named with --device cpu runs on cuda:0.
  const nlohmann::json j0 = emulated_json("bench --quick tile_forward_cuda");
  CHECK(j0["device"]["device"] == "cpu");
  CHECK(j0["benchmarks"]["tile_forward_cuda"]["device"] == "cuda:0");
  expect_usage_error("bench --quick --device cuda:2",
                     {"aimc: device error:", "--device cuda:2: GPU index out of range (2 GPU(s) found)"},
                     two + kEmulated);
  expect_usage_error("bench --quick --device cuda tile_forward_cuda gemm",
                     {"aimc: usage error:", "benchmark 'gemm' runs on the CPU only, not on --device cuda:0",
                      "--device cpu"},
                     kEmulated);
}

// Lightning-style hardware-aware training (TorchInferenceRPUConfig) on the
// (emulated) GPU follows the CPU run, for the family's defaults (a float
// forward over the tiles) and for a config with learned input ranges, DAC,
// ADC, output noise and a per-channel DISCRETIZE_ADD_NORMAL modifier: the
// lightning kernels are the CPU's laws and draws under the emulation and only
// the digital sums add in another order (measured ~2e-7 of a tensor's max
// after the 10 steps of one epoch, the same with or without the lightning
// features), so the loss and every checkpoint tensor agree within 1e-5
// (relative, + 1e-5 of the tensor's max) and the accuracies are equal. One
// epoch: with quantised weights and outputs such an ulp can later move a
// weight or an output across a rounding boundary, one quantisation step
// (measured: after a second epoch the losses were 1.5e-5 apart).
TEST_CASE("train --rpu-config TorchInferenceRPUConfig --device cuda on an emulated GPU follows the CPU run") {
  if (!AIMC_HAVE_CUDA) return;  // no backend loader to point at the emulation
  fs::create_directories(tmp);
  const fs::path data = tmp / "device_lightning_data";
  write_varied_split(data, "train", 160);
  write_varied_split(data, "t10k", 200);
  const std::string hwa = (tmp / "lightning_hwa.json").string();
  std::ofstream(hwa) << R"({"family": "TorchInferenceRPUConfig", "mapping": {"max_input_size": 256},
    "pre_post": {"input_range": {"enable": true, "init_from_data": 5}},
    "forward": {"inp_res": 0.00392156862745098, "out_noise": 0.04, "out_bound": 10.0, "out_res": 0.00392156862745098},
    "modifier": {"type": "DISCRETIZE_ADD_NORMAL_PER_CHANNEL", "res": 0.015625, "std_dev": 0.03}})";
  for (const std::string& config : {std::string("TorchInferenceRPUConfig"), hwa}) {
    INFO(config);
    const std::size_t ranges = check_emulated_training(data, config, 1, "device_lightning" + std::to_string(config == hwa)).second;
    CHECK((config == hwa) == (ranges > 0));  // the learned input ranges are compared where they exist
  }
  fs::remove_all(tmp);
}
