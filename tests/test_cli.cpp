// The aimc command line end to end: train -> checkpoint -> eval, thread-count
// determinism of train_loss, JSON output, exit codes for bad input, and drift
// (accuracy vs time on analog tiles, independent of the thread count),
// interrupted and resumed training (the same bits as an uninterrupted run),
// interrupted and resumed drift (the same CSV bytes), and sweep (a grid of
// drift experiments: equal to drift runs, resumable, thread-independent).
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <chrono>
#include <csignal>
#include <cstring>
#include <spawn.h>
#include <thread>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aimc_config.h"
#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "convert/onnx_io.h"
#include "engine/generator.h"
#include "engine/safetensors.h"
#include "kernels/cuda/backend.h"
#include "layers/config/rpu_config.h"
#include "layers/modules/graph.h"
#include "layers/modules/linear.h"
#include "layers/modules/sequential.h"
#include "tests/cli_test_util.h"

namespace fs = std::filesystem;
using namespace aimc_test;

namespace {

// Runs the CLI with args; stderr goes to err_file.
Run run(const std::string& args, const std::string& err_file = "/dev/null") {
  return run_command(std::string(AIMC_CLI_PATH) + " " + args, err_file);
}

const fs::path tmp = fs::temp_directory_path() / ("aimc_cli_" + std::to_string(::getpid()));

// Runs the CLI, expects exit code 2 and one stderr line holding every needle.
// A 60 s timeout turns a hang (a FIFO opened for reading) into a failure.
// env: variable assignments for the command ("NAME=value ").
void expect_usage_error(const std::string& args, const std::vector<std::string>& needles,
                        const std::string& env = "") {
  fs::create_directories(tmp);
  const std::string err = (tmp / "usage.err").string();
  const Run r = run_command(env + "timeout 60 " + std::string(AIMC_CLI_PATH) + " " + args, err);
  INFO("aimc " << args);
  CHECK(r.code == 2);
  const std::string msg = slurp(err);
  INFO("stderr: " << msg);
  CHECK(std::count(msg.begin(), msg.end(), '\n') == 1);
  for (const auto& n : needles) CHECK(msg.find(n) != std::string::npos);
}

// An MNIST-format split of n 28x28 images in dir (raw IDX), labels i % 10
// unless given.
void write_split(const fs::path& dir, const std::string& split, int n, std::vector<int> labels = {}) {
  fs::create_directories(dir);
  auto be32 = [](std::vector<unsigned char>& b, int v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>((v >> s) & 0xff));
  };
  std::vector<unsigned char> img = {0, 0, 8, 3}, lab = {0, 0, 8, 1};
  for (int v : {n, 28, 28}) be32(img, v);
  img.resize(img.size() + std::size_t(n) * 28 * 28, 128);
  be32(lab, n);
  if (labels.empty())
    for (int i = 0; i < n; ++i) labels.push_back(i % 10);
  for (int v : labels) lab.push_back(static_cast<unsigned char>(v));
  std::ofstream((dir / (split + "-images-idx3-ubyte")).string(), std::ios::binary)
      .write(reinterpret_cast<const char*>(img.data()), std::streamsize(img.size()));
  std::ofstream((dir / (split + "-labels-idx1-ubyte")).string(), std::ios::binary)
      .write(reinterpret_cast<const char*>(lab.data()), std::streamsize(lab.size()));
}

// The "aimc.training" run state of a checkpoint.
nlohmann::json training_state(const std::string& path) {
  return nlohmann::json::parse(aimc::read_safetensors(path).metadata.at("aimc.training"));
}

}  // namespace

TEST_CASE("train writes a checkpoint that eval rebuilds alone; JSON on the last line") {
  fs::create_directories(tmp);
  const std::string ckpt = (tmp / "mlp.safetensors").string();
  const std::string common = " --model mlp --epochs 2 --batch-size 64 --limit-train 1024 --limit-test 500 --seed 5 --json";
  Run t1 = run("train" + common + " --threads 1 --out " + ckpt);
  REQUIRE(t1.code == 0);
  const auto j1 = last_json_line(t1.out);
  CHECK(j1["epochs"] == 2);
  CHECK(j1["test_accuracy"].get<double>() > 0.5);  // 2 epochs on 1024 samples learn something
  CHECK(j1["test_accuracy"].get<double>() <= 1.0);
  CHECK(j1["train_loss"].get<double>() > 0.0);
  CHECK(j1["seconds"].get<double>() > 0.0);

  // Same seed, two threads: identical train_loss (bitwise, printed with full precision).
  Run t2 = run("train" + common + " --threads 2");
  REQUIRE(t2.code == 0);
  const auto j2 = last_json_line(t2.out);
  CHECK(j2["train_loss"].get<double>() == j1["train_loss"].get<double>());
  CHECK(j2["test_accuracy"].get<double>() == j1["test_accuracy"].get<double>());

  Run e = run("eval --checkpoint " + ckpt + " --limit-test 500 --json");
  REQUIRE(e.code == 0);
  const auto je = last_json_line(e.out);
  CHECK(je["test_accuracy"].get<double>() == j1["test_accuracy"].get<double>());
  CHECK(je["model"] == "mlp");
}

TEST_CASE("bad usage, config and input files exit with code 2 and a message") {
  fs::create_directories(tmp);
  const std::string err = (tmp / "err.txt").string();
  CHECK(run("train --epochs 0", err).code == 2);
  CHECK(run("train --model nope --epochs 1 --limit-train 64", err).code == 2);
  CHECK(slurp(err).find("lenet5") != std::string::npos);  // lists the known models
  CHECK(run("frobnicate", err).code == 2);
  CHECK(run("eval --checkpoint " + (tmp / "missing.safetensors").string(), err).code == 2);
  CHECK(slurp(err).find("missing.safetensors") != std::string::npos);
  {
    std::ofstream((tmp / "corrupt.safetensors").string()) << "this is not a checkpoint";
  }
  CHECK(run("eval --checkpoint " + (tmp / "corrupt.safetensors").string(), err).code == 2);
  CHECK(run("train --dataset fashion-mnist:/nonexistent --epochs 1", err).code == 2);
  CHECK(slurp(err).find("/nonexistent") != std::string::npos);
  CHECK(run("bench nosuchbench --json", err).code == 2);
}

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
    // With a GPU, train, drift and bench say they cannot run there yet (issue 11).
    for (const std::string& cmd : {commands[0], commands[2], commands[3]})
      expect_usage_error(cmd + " --device cuda", {"aimc: device error:", "cannot run it on the GPU yet"});
    return;
  }
  for (const std::string& cmd : commands)
    for (const std::string device : {"cuda", "cuda:0", "cuda:3"})
      expect_usage_error(cmd + " --device " + device,
                         {"aimc: device error:", "--device " + device + ": no GPU found", "use --device cpu"});
}

TEST_CASE("--device cuda on an emulated GPU (AIMC_CUDA_LIBRARY): accepted, the model moves, unsupported work refused") {
  fs::create_directories(tmp);
  const std::string ckpt = (tmp / "device_mlp.safetensors").string();
  {
    aimc::Generator gen(3);
    auto model = aimc::build_model("mlp", gen);
    aimc::save_checkpoint(ckpt, *model, aimc::model_description("mlp"));
  }
  const std::string emulated = std::string("AIMC_CUDA_LIBRARY=") + AIMC_CUDA_EMULATED_BACKEND + " ";
  const std::string data = (tmp / "device_data").string();
  write_split(data, "t10k", 8);
  // eval moves the model; the first op the engine cannot run there names itself (exit 2).
  expect_usage_error("eval --checkpoint " + ckpt + " --dataset mnist:" + data + " --device cuda",
                     {"aimc: device error:", "cuda:0"}, emulated);
  // One emulated GPU: index 1 is out of range.
  expect_usage_error("eval --checkpoint " + ckpt + " --device cuda:1",
                     {"aimc: device error:", "--device cuda:1: GPU index out of range (1 GPU(s) found)"}, emulated);
  for (const std::string& cmd :
       std::vector<std::string>{"train --epochs 1 --limit-train 64", "drift --checkpoint " + ckpt, "bench --quick"})
    expect_usage_error(cmd + " --device cuda", {"aimc: device error:", "cannot run it on the GPU yet"}, emulated);
  // The same eval on the CPU runs.
  CHECK(run("eval --checkpoint " + ckpt + " --dataset mnist:" + data + " --device cpu").code == 0);
}

TEST_CASE("bench --quick prints the three entries as JSON") {
  Run b = run("bench --quick --json gemm epoch_mlp");
  REQUIRE(b.code == 0);
  const auto j = last_json_line(b.out);
  CHECK(j["benchmarks"]["gemm"]["gflops"].get<double>() > 0.0);
  CHECK(j["benchmarks"]["gemm"]["fraction_of_peak"].get<double>() > 0.0);
  CHECK(j["benchmarks"]["epoch_mlp"]["seconds"].get<double>() > 0.0);
  CHECK(j["machine"]["fma_peak_gflops_measured"].get<double>() > 0.0);
  fs::remove_all(tmp);
}

// Without --lr: 0.002, or 0.02 when the tiles hold normalised weights
// (StandardHWATrainingPreset: weight_scaling_omega 1); --lr always wins.
TEST_CASE("train picks its default learning rate by the tiles' weight normalisation and reports it") {
  const std::string common = "train --model mlp --epochs 1 --limit-train 128 --limit-test 50 --json";
  auto lr_of = [&](const std::string& extra) {
    Run r = run(common + extra);
    REQUIRE(r.code == 0);
    return last_json_line(r.out)["lr"].get<double>();
  };
  CHECK(lr_of("") == 0.002);
  CHECK(lr_of(" --rpu-config InferenceRPUConfig") == 0.002);  // omega 0: tiles hold W itself
  CHECK(lr_of(" --rpu-config StandardHWATrainingPreset") == Approx(0.02).epsilon(1e-12));
  CHECK(lr_of(" --rpu-config StandardHWATrainingPreset --lr 0.005") == 0.005);
  Run text = run("train --model mlp --epochs 1 --limit-train 128 --limit-test 50 --rpu-config StandardHWATrainingPreset");
  CHECK(text.out.find("lr 0.02 (default for hardware-aware training") != std::string::npos);
}

// --schedule step with --step-size/--gamma is torch's StepLR: the lr of epoch
// e (from 0) is lr * gamma^floor(e / step_size), listed per epoch in "history".
TEST_CASE("train --schedule step takes --step-size and --gamma and reports each epoch's lr") {
  Run r = run("train --model mlp --optimizer sgd --lr 0.05 --epochs 3 --limit-train 256 --limit-test 100 --json "
              "--schedule step --step-size 1 --gamma 0.5");
  REQUIRE(r.code == 0);
  const auto j = last_json_line(r.out);
  CHECK(j["schedule"] == "step");
  CHECK(j["step_size"] == 1);
  CHECK(j["gamma"].get<double>() == 0.5);
  CHECK(j["lr"].get<double>() == 0.05);  // the base lr
  REQUIRE(j["history"].size() == 3);
  const std::vector<double> expected{0.05, 0.025, 0.0125};
  for (std::size_t e = 0; e < expected.size(); ++e) {
    CHECK(j["history"][e]["epoch"] == e + 1);
    CHECK(j["history"][e]["lr"].get<double>() == Approx(expected[e]).epsilon(1e-15));
    CHECK(j["history"][e]["train_loss"].get<double>() > 0.0);
  }
  CHECK(j["history"][2]["train_loss"].get<double>() == j["train_loss"].get<double>());

  // Without --step-size: the effective max(1, epochs/3) = 1 and gamma 0.1 are reported.
  Run d = run("train --model mlp --epochs 2 --limit-train 64 --limit-test 50 --json --schedule step --lr 0.01");
  REQUIRE(d.code == 0);
  const auto jd = last_json_line(d.out);
  CHECK(jd["step_size"] == 1);
  CHECK(jd["gamma"].get<double>() == 0.1);
  REQUIRE(jd["history"].size() == 2);
  CHECK(jd["history"][1]["lr"].get<double>() == Approx(0.001).epsilon(1e-15));

  // Other schedules carry no step fields; cosine's first epoch runs at the base lr.
  Run c = run("train --model mlp --epochs 1 --limit-train 64 --limit-test 50 --json --lr 0.01");
  REQUIRE(c.code == 0);
  const auto jc = last_json_line(c.out);
  CHECK(jc["schedule"] == "cosine");
  CHECK_FALSE(jc.contains("step_size"));
  CHECK_FALSE(jc.contains("gamma"));
  CHECK(jc["history"][0]["lr"].get<double>() == 0.01);
}

TEST_CASE("--step-size and --gamma out of range or without --schedule step exit 2 with one line") {
  fs::create_directories(tmp);
  const std::string err = (tmp / "err_step.txt").string();
  const std::string base = "train --model mlp --epochs 1 --limit-train 64 --limit-test 50 ";
  auto check_error = [&](const std::string& extra, const std::vector<std::string>& needles) {
    CHECK(run(base + extra, err).code == 2);
    const std::string msg = slurp(err);
    CHECK(std::count(msg.begin(), msg.end(), '\n') == 1);
    for (const auto& n : needles) CHECK(msg.find(n) != std::string::npos);
  };
  check_error("--step-size 2", {"--step-size", "--schedule step", "cosine"});  // cosine is the default
  check_error("--schedule none --gamma 0.5", {"--gamma", "--schedule step"});
  check_error("--schedule step --step-size 0", {"--step-size", "between 1 and 10000", "(got 0)"});
  check_error("--schedule step --step-size -3", {"--step-size", "between 1 and 10000", "(got -3)"});
  check_error("--schedule step --gamma 0", {"--gamma", "(0, 1]"});
  check_error("--schedule step --gamma 1.5", {"--gamma", "(0, 1]"});
  CHECK(run(base + "--schedule step --step-size 1 --gamma 1", err).code == 0);  // gamma 1: the closed end
  fs::remove_all(tmp);
}

TEST_CASE("inspect prints the tile grid of every analog layer") {
  Run r = run("inspect --model lenet5 --rpu-config InferenceRPUConfig --json");
  REQUIRE(r.code == 0);
  const auto j = last_json_line(r.out);
  CHECK(j["layers"].size() == 5);  // 2 conv + 3 linear
  CHECK(j["layers"][2]["matrix"] == nlohmann::json::array({120, 400}));
  CHECK(j["total_tiles"] == 5);
  CHECK(j["total_weights"] == 61470);  // lenet5 weights without biases
  Run big = run("inspect --model resnet20 --json");
  REQUIRE(big.code == 0);
  const auto jb = last_json_line(big.out);
  // Stage-3 3x3 convs have 64*9 = 576 inputs: two tiles of 32 channels each.
  bool found = false;
  for (const auto& l : jb["layers"])
    if (l["matrix"] == nlohmann::json::array({64, 576})) {
      found = true;
      CHECK(l["tile_cols"] == nlohmann::json::array({288, 288}));
    }
  CHECK(found);
  CHECK(run("inspect --model lenet5 --rpu-config NoSuchPreset").code == 2);
}

TEST_CASE("inspect --mapped: convolutions split along whole channels instead of by element") {
  fs::create_directories(tmp);
  const std::string cfg = (tmp / "small_tiles.json").string();
  std::ofstream(cfg) << R"({"family": "InferenceRPUConfig", "mapping": {"max_input_size": 256}})";
  // Stage-3 3x3 convs: 576 inputs. By element: [192, 192, 192]. By channel:
  // 28 channels of 9 a tile -> 64 channels as [22, 21, 21] -> [198, 189, 189].
  auto stage3_cols = [&](const std::string& extra) {
    Run r = run("inspect --model resnet20 --json --rpu-config " + cfg + extra);
    REQUIRE(r.code == 0);
    const auto j = last_json_line(r.out);
    for (const auto& l : j["layers"])
      if (l["matrix"] == nlohmann::json::array({64, 576})) return std::make_pair(l["type"], l["tile_cols"]);
    FAIL("no [64, 576] layer");
    return std::make_pair(nlohmann::json(), nlohmann::json());
  };
  const auto plain = stage3_cols(""), mapped = stage3_cols(" --mapped");
  CHECK(plain.first == "AnalogConv2d");
  CHECK(plain.second == nlohmann::json::array({192, 192, 192}));
  CHECK(mapped.first == "AnalogConv2dMapped");
  CHECK(mapped.second == nlohmann::json::array({198, 189, 189}));
  fs::remove_all(tmp);
}

TEST_CASE("train --rpu-config trains on analog tiles; eval rebuilds the analog model or re-maps it") {
  fs::create_directories(tmp);
  const std::string ckpt = (tmp / "analog.safetensors").string();
  Run t = run("train --model mlp --epochs 1 --limit-train 1024 --limit-test 300 --seed 2 --json "
              "--rpu-config InferenceRPUConfig --out " + ckpt);
  REQUIRE(t.code == 0);
  const auto jt = last_json_line(t.out);
  CHECK(jt["rpu_config"] == "InferenceRPUConfig");
  CHECK(jt["test_accuracy"].get<double>() > 0.4);  // noisy tiles still learn
  Run e = run("eval --checkpoint " + ckpt + " --limit-test 300 --json");
  REQUIRE(e.code == 0);
  CHECK(last_json_line(e.out)["rpu_config"] == "InferenceRPUConfig");
  Run f = run("eval --checkpoint " + ckpt + " --limit-test 300 --json --rpu-config FloatingPointRPUConfig");
  REQUIRE(f.code == 0);
  CHECK(last_json_line(f.out)["rpu_config"] == "FloatingPointRPUConfig");
  // Exact tiles are deterministic: two evaluations agree exactly.
  Run f2 = run("eval --checkpoint " + ckpt + " --limit-test 300 --json --rpu-config FloatingPointRPUConfig");
  CHECK(last_json_line(f2.out)["test_accuracy"] == last_json_line(f.out)["test_accuracy"]);
  CHECK(run("train --model mlp --epochs 1 --limit-train 64 --rpu-config NoSuchConfig").code == 2);
}

TEST_CASE("train on pulsed devices: sgd is AnalogSGD, adam is refused, --eval-each-epoch reports each epoch") {
  fs::create_directories(tmp);
  const std::string ckpt = (tmp / "pulsed.safetensors").string();
  Run t = run("train --model mlp --epochs 2 --limit-train 1024 --limit-test 300 --seed 1 --json --optimizer sgd "
              "--momentum 0 --lr 0.1 --schedule none --rpu-config SingleRPUConfig --eval-each-epoch --out " + ckpt);
  REQUIRE(t.code == 0);
  const auto jt = last_json_line(t.out);
  CHECK(jt["rpu_config"] == "SingleRPUConfig");
  REQUIRE(jt["history"].size() == 2);
  const double first = jt["history"][0]["test_accuracy"].get<double>();
  const double last = jt["history"][1]["test_accuracy"].get<double>();
  CHECK(last == jt["test_accuracy"].get<double>());
  CHECK(last > 0.3);  // 10 classes: the pulses learned (chance is 0.1)
  INFO("epoch accuracies " << first << ", " << last);
  // The checkpoint rebuilds the pulsed model and evaluates it.
  Run e = run("eval --checkpoint " + ckpt + " --limit-test 300 --json");
  REQUIRE(e.code == 0);
  CHECK(last_json_line(e.out)["rpu_config"] == "SingleRPUConfig");
  // Pulsed tiles learn through AnalogSGD only.
  const std::string err = (tmp / "adam.err").string();
  Run a = run("train --model mlp --epochs 1 --limit-train 64 --optimizer adam --rpu-config SingleRPUConfig", err);
  CHECK(a.code == 2);
  CHECK(slurp(err).find("--optimizer sgd") != std::string::npos);
  // Without --eval-each-epoch the history has no accuracies.
  Run n = run("train --model mlp --epochs 1 --limit-train 64 --limit-test 50 --json --optimizer sgd "
              "--rpu-config SingleRPUConfig");
  REQUIRE(n.code == 0);
  CHECK_FALSE(last_json_line(n.out)["history"][0].contains("test_accuracy"));
}

TEST_CASE("drift reports accuracy vs time over repeated chips, independent of the thread count") {
  const fs::path dir = tmp / "drift";
  fs::create_directories(dir);
  const std::string err = (dir / "err.txt").string();
  const std::string ckpt = (dir / "mlp.safetensors").string();
  REQUIRE(run("train --model mlp --epochs 1 --limit-train 2000 --limit-test 100 --seed 3 --out " + ckpt).code == 0);

  // A digital checkpoint needs analog tiles to drift on.
  CHECK(run("drift --checkpoint " + ckpt + " --times 0,86400", err).code == 2);
  CHECK(slurp(err).find("--rpu-config") != std::string::npos);
  // Bad times name the bad value.
  CHECK(run("drift --checkpoint " + ckpt + " --rpu-config InferenceRPUConfig --times 1,abc", err).code == 2);
  CHECK(slurp(err).find("abc") != std::string::npos);
  CHECK(run("drift --checkpoint " + ckpt + " --rpu-config InferenceRPUConfig --times=-5", err).code == 2);
  CHECK(slurp(err).find("-5") != std::string::npos);
  CHECK(run("drift --checkpoint " + ckpt + " --rpu-config InferenceRPUConfig --repeats 0", err).code == 2);
  CHECK(run("drift --checkpoint " + (dir / "missing.safetensors").string() + " --rpu-config InferenceRPUConfig",
            err).code == 2);

  const std::string args = "drift --checkpoint " + ckpt +
                           " --rpu-config InferenceRPUConfig --times 0,86400 --repeats 2 --limit-test 300 --json";
  const std::string csv = (dir / "drift.csv").string();
  Run d1 = run(args + " --threads 1 --csv " + csv);
  REQUIRE(d1.code == 0);
  const auto j1 = last_json_line(d1.out);
  REQUIRE(j1["times"] == nlohmann::json::array({0.0, 86400.0}));
  REQUIRE(j1["accuracy_mean"].size() == 2);
  REQUIRE(j1["accuracy_std"].size() == 2);
  REQUIRE(j1["accuracy"].size() == 2);  // [repeat][time]
  CHECK(j1["label"] == "mlp");
  CHECK(j1["rpu_config"] == "InferenceRPUConfig");
  for (int i = 0; i < 2; ++i) {
    const double mean = j1["accuracy_mean"][i].get<double>();
    const double std = j1["accuracy_std"][i].get<double>();
    CHECK(mean >= 0.0);
    CHECK(mean <= 1.0);
    CHECK(std >= 0.0);
    const double a = j1["accuracy"][0][i].get<double>(), b = j1["accuracy"][1][i].get<double>();
    CHECK(mean == Approx((a + b) / 2).epsilon(1e-12));
    CHECK(std == Approx(std::abs(a - b) / std::sqrt(2.0)).margin(1e-12));  // sample std of two values
  }
  // 1 + header line per (label, time).
  const std::string text = slurp(csv);
  CHECK(text.rfind("label,time_s,accuracy_mean,accuracy_std,acc_r0,acc_r1\n", 0) == 0);
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);

  Run d2 = run(args + " --threads 2");
  REQUIRE(d2.code == 0);
  const auto j2 = last_json_line(d2.out);
  CHECK(j2["accuracy"] == j1["accuracy"]);
  CHECK(j2["accuracy_mean"] == j1["accuracy_mean"]);
  CHECK(j2["accuracy_std"] == j1["accuracy_std"]);

  // Two checkpoints: one entry per model, same chips.
  Run d3 = run(args + " --checkpoint " + ckpt + " --label a --label b");
  REQUIRE(d3.code == 0);
  const auto j3 = last_json_line(d3.out);
  REQUIRE(j3["models"].size() == 2);
  CHECK(j3["models"][1]["label"] == "b");
  CHECK(j3["models"][0]["accuracy"] == j1["accuracy"]);
  CHECK(j3["models"][1]["accuracy"] == j1["accuracy"]);
  fs::remove_all(dir);
}

TEST_CASE("eval and drift take a checkpoint of a Graph: the numbers of the Sequential it copies") {
  const fs::path dir = tmp / "graph";
  fs::create_directories(dir);
  const std::string err = (dir / "err.txt").string();
  const std::string seq_ckpt = (dir / "mlp.safetensors").string(), graph_ckpt = (dir / "graph.safetensors").string();
  const std::string analog_ckpt = (dir / "analog_graph.safetensors").string();
  REQUIRE(run("train --model mlp --epochs 1 --limit-train 1000 --limit-test 100 --seed 4 --out " + seq_ckpt).code == 0);
  {
    // The trained mlp's layers as a chain graph (no model name in the description).
    aimc::Checkpoint ck = aimc::load_checkpoint(seq_ckpt);
    const auto& seq = dynamic_cast<aimc::Sequential&>(*ck.model);
    std::vector<aimc::GraphNode> nodes;
    std::string value = "x";
    for (std::size_t k = 0; k < seq.size(); ++k) {
      aimc::GraphNode n;
      n.name = std::to_string(k);
      n.module = seq[k];
      n.inputs = {value};
      std::string out(1, 'v');  // built by appends: "v" + ... trips a false -Wrestrict in GCC 12
      out += n.name;
      n.outputs = {out};
      value = out;
      nodes.push_back(n);
    }
    auto graph = std::make_shared<aimc::Graph>(std::vector<std::string>{"x"}, nodes, std::vector<std::string>{value});
    aimc::save_checkpoint(graph_ckpt, *graph, nlohmann::json::object());
    aimc::Generator gen(2, aimc::kAnalogConversionStream);
    auto analog = aimc::convert_to_analog(graph, aimc::InferenceRPUConfig{}, gen);
    aimc::save_checkpoint(analog_ckpt, *analog, nlohmann::json::object());
  }
  const std::string eval = " --limit-test 300 --json";
  Run es = run("eval --checkpoint " + seq_ckpt + eval), eg = run("eval --checkpoint " + graph_ckpt + eval, err);
  REQUIRE(eg.code == 0);
  const auto js = last_json_line(es.out), jg = last_json_line(eg.out);
  CHECK(jg["test_accuracy"] == js["test_accuracy"]);
  CHECK(js["test_accuracy"].get<double>() > 0.5);  // a trained model, not a trivial agreement
  CHECK(jg["model"] == "Graph");
  CHECK(jg["rpu_config"] == "digital");
  Run ea = run("eval --checkpoint " + analog_ckpt + eval, err);
  REQUIRE(ea.code == 0);
  CHECK(last_json_line(ea.out)["rpu_config"] == "InferenceRPUConfig");

  // Drift on the same chips: the same accuracies for the graph as for the Sequential.
  const std::string drift = " --rpu-config InferenceRPUConfig --times 0,3600 --repeats 2 --limit-test 200 --json";
  Run ds = run("drift --checkpoint " + seq_ckpt + drift), dg = run("drift --checkpoint " + graph_ckpt + drift, err);
  REQUIRE(ds.code == 0);
  REQUIRE(dg.code == 0);
  CHECK(last_json_line(dg.out)["accuracy"] == last_json_line(ds.out)["accuracy"]);
  // The analog graph drifts on its own config, or re-mapped onto another.
  Run da = run("drift --checkpoint " + analog_ckpt + " --times 0,3600 --repeats 2 --limit-test 200 --json", err);
  REQUIRE(da.code == 0);
  CHECK(last_json_line(da.out)["rpu_config"] == "InferenceRPUConfig");
  Run dr = run("drift --checkpoint " + analog_ckpt + drift, err);
  REQUIRE(dr.code == 0);
  CHECK(last_json_line(dr.out)["accuracy"] == last_json_line(ds.out)["accuracy"]);
  fs::remove_all(dir);
}

TEST_CASE("train --init trains a Graph's own parameters (an imported model's scale and bias) beside its layers") {
  // x [N, 1, 28, 28] -> flatten -> Linear 784 -> 10 (a child) -> * scale -> + bias, where scale and bias are
  // parameters of the Graph itself, as an import makes a LayerNorm's or an N-D Linear's separate bias Add.
  const fs::path dir = tmp / "graph_params";
  fs::create_directories(dir);
  const std::string err = (dir / "err.txt").string(), init = (dir / "init.safetensors").string();
  aimc::Generator gen(3);
  auto op = [](const std::string& name, const std::string& o, std::vector<std::string> in, const std::string& out,
               nlohmann::json attributes = nlohmann::json::object()) {
    aimc::GraphNode n;
    n.name = name;
    n.op = o;
    n.inputs = std::move(in);
    n.outputs = {out};
    n.attributes = std::move(attributes);
    return n;
  };
  aimc::GraphNode fc;
  fc.name = "fc";
  fc.module = std::make_shared<aimc::Linear>(784, 10, gen);
  fc.inputs = {"flat"};
  fc.outputs = {"h"};
  const aimc::Tensor scale0 = aimc::Tensor::full({10}, 1.0), bias0 = aimc::Tensor::zeros({10});
  auto graph = std::make_shared<aimc::Graph>(
      std::vector<std::string>{"x"},
      std::vector<aimc::GraphNode>{op("flatten", "flatten", {"x"}, "flat"), fc, op("scale", "mul", {"h", "s"}, "hs"),
                                   op("bias", "add", {"hs", "b"}, "y")},
      std::vector<std::string>{"y"}, aimc::NamedTensors{},
      aimc::NamedTensors{{"s", scale0.clone()}, {"b", bias0.clone()}});
  aimc::save_checkpoint(init, *graph, {{"input_shape", {1, 28, 28}}});
  auto own = [](const std::string& path) {
    std::map<std::string, std::vector<double>> out;
    for (const auto& [name, t] : aimc::load_checkpoint(path).model->named_parameters())
      if (name == "s" || name == "b") out[name] = t.to_double_vector();
    return out;
  };
  const std::string common = " --epochs 1 --limit-train 300 --limit-test 50 --seed 2";
  for (const std::string rpu : {"", " --rpu-config StandardHWATrainingPreset"}) {
    INFO(rpu);
    const std::string tuned = (dir / "tuned.safetensors").string();
    REQUIRE(run("train --init " + init + rpu + common + " --out " + tuned, err).code == 0);
    const auto after = own(tuned);
    REQUIRE(after.size() == 2);
    // They moved from 1 and 0: the optimizer stepped them (a step of lr 0.01 on gradients of order 0.1 and more).
    double moved_s = 0, moved_b = 0;
    for (std::size_t i = 0; i < 10; ++i) {
      moved_s = std::max(moved_s, std::abs(after.at("s")[i] - 1.0));
      moved_b = std::max(moved_b, std::abs(after.at("b")[i]));
    }
    CHECK(moved_s > 1e-3);
    CHECK(moved_b > 1e-3);
    fs::remove(tuned);
  }
  fs::remove_all(dir);
}

TEST_CASE("import/export: the ONNX LeNet-5 of a lenet5 checkpoint drifts as the named model; train --init") {
  const fs::path dir = tmp / "onnx";
  fs::create_directories(dir);
  const std::string err = (dir / "err.txt").string();
  const std::string named = (dir / "lenet5.safetensors").string(), onnx_file = (dir / "lenet5.onnx").string();
  const std::string imported = (dir / "imported.safetensors").string();
  if (!aimc::onnx_available()) {
    Run r = run("import " + onnx_file + " --out " + imported, err);
    CHECK(r.code == 2);
    CHECK(slurp(err).find("built without ONNX support") != std::string::npos);
    return;
  }
  REQUIRE(run("train --model lenet5 --epochs 1 --limit-train 1000 --limit-test 100 --seed 4 --out " + named).code == 0);
  REQUIRE(run("export --checkpoint " + named + " --out " + onnx_file, err).code == 0);
  Run ri = run("import " + onnx_file + " --out " + imported + " --json", err);
  REQUIRE(ri.code == 0);
  CHECK(last_json_line(ri.out)["layers"] == 7);  // 2 conv, 2 pool, 3 linear
  CHECK(last_json_line(ri.out)["input_shape"] == nlohmann::json({1, 28, 28}));

  // inspect takes the import: the named model's tile grid.
  Run in = run("inspect --model lenet5 --rpu-config InferenceRPUConfig --json"),
      ii = run("inspect --checkpoint " + imported + " --rpu-config InferenceRPUConfig --json", err);
  REQUIRE(ii.code == 0);
  CHECK(last_json_line(ii.out)["total_tiles"] == last_json_line(in.out)["total_tiles"]);
  CHECK(last_json_line(ii.out)["total_weights"] == last_json_line(in.out)["total_weights"]);
  CHECK(last_json_line(ii.out)["layers"].size() == 5);

  // Same seeds, same accuracy table: the imported graph's layers map onto the same tiles.
  const std::string drift = " --rpu-config InferenceRPUConfig --times 1,86400 --repeats 2 --limit-test 200 --seed 9 --json";
  Run dn = run("drift --checkpoint " + named + drift), di = run("drift --checkpoint " + imported + drift, err);
  REQUIRE(dn.code == 0);
  REQUIRE(di.code == 0);
  CHECK(last_json_line(di.out)["accuracy"] == last_json_line(dn.out)["accuracy"]);
  CHECK(last_json_line(dn.out)["accuracy_mean"][0].get<double>() > 0.3);  // a trained model, not chance (0.1)

  // export of the import is the same file's model: import again, the same eval.
  const std::string again = (dir / "again.onnx").string(), again_ckpt = (dir / "again.safetensors").string();
  REQUIRE(run("export --checkpoint " + imported + " --out " + again, err).code == 0);
  REQUIRE(run("import " + again + " --out " + again_ckpt, err).code == 0);
  const std::string eval = " --limit-test 300 --json";
  CHECK(last_json_line(run("eval --checkpoint " + again_ckpt + eval).out)["test_accuracy"] ==
        last_json_line(run("eval --checkpoint " + named + eval).out)["test_accuracy"]);

  // Hardware-aware fine-tuning from the import: an analog model that eval and drift take.
  const std::string tuned = (dir / "tuned.safetensors").string();
  Run rt = run("train --init " + imported + " --rpu-config StandardHWATrainingPreset --epochs 1 --limit-train 500 " +
                   "--limit-test 100 --out " + tuned + " --json",
               err);
  REQUIRE(rt.code == 0);
  Run et = run("eval --checkpoint " + tuned + eval, err);
  REQUIRE(et.code == 0);
  CHECK(last_json_line(et.out)["rpu_config"] == "InferenceRPUConfig");
  CHECK(run("drift --checkpoint " + tuned + " --times 1,3600 --repeats 1 --limit-test 100", err).code == 0);
  CHECK(run("train --init " + imported + " --model mlp", err).code == 2);

  // Bad files and shapes: one line, exit 2.
  {
    std::ofstream(dir / "junk.onnx") << "not an onnx model";
  }
  Run rj = run("import " + (dir / "junk.onnx").string() + " --out " + (dir / "j.safetensors").string(), err);
  CHECK(rj.code == 2);
  CHECK(slurp(err).find("not an ONNX model") != std::string::npos);
  CHECK(run("import " + onnx_file + " --out " + imported + " --input-shape 1,x", err).code == 2);
  CHECK(slurp(err).find("--input-shape") != std::string::npos);
  fs::remove_all(dir);
}

// Issue 12, part 1: every numeric flag has a range, stated in --help, and a
// value outside it (or overflowing 64 bits, or nan/inf) is one line naming the
// flag, the range and the value, exit 2, before any work.
TEST_CASE("numeric flags outside their range exit 2 with one line naming the flag and the range") {
  const std::string train = "train --model mlp --epochs 1 --limit-train 64 --limit-test 50 ";
  expect_usage_error(train + "--batch-size 9223372036854775807",
                     {"--batch-size", "between 1 and 65536", "(got 9223372036854775807)"});
  expect_usage_error(train + "--epochs 99999999999999999999",
                     {"--epochs", "between 1 and 10000", "(got 99999999999999999999)"});
  expect_usage_error(train + "--epochs 10001", {"--epochs", "between 1 and 10000"});
  expect_usage_error(train + "--epochs 1.5", {"--epochs", "an integer"});
  expect_usage_error("drift --checkpoint x.safetensors --repeats 4611686018427387904",
                     {"--repeats", "between 1 and 1000", "(got 4611686018427387904)"});
  expect_usage_error("drift --checkpoint x.safetensors --repeats 0", {"--repeats", "between 1 and 1000"});
  // Negative sample limits: refused alike by train, eval and drift (0 means all).
  expect_usage_error(train + "--limit-train -5", {"--limit-train", "between 0 and 100000000", "(got -5)"});
  expect_usage_error(train + "--limit-test=-1", {"--limit-test", "between 0 and 100000000"});
  expect_usage_error("eval --checkpoint x.safetensors --limit-test=-1", {"--limit-test", "between 0 and 100000000"});
  expect_usage_error("drift --checkpoint x.safetensors --limit-test=-1", {"--limit-test", "between 0 and 100000000"});
  // Floats: nan and inf are refused, as are values outside the interval.
  expect_usage_error(train + "--lr nan", {"--lr", "finite number in (0, 10]", "(got nan)"});
  expect_usage_error(train + "--lr inf", {"--lr", "(0, 10]"});
  expect_usage_error(train + "--lr 0", {"--lr", "(0, 10]"});
  expect_usage_error(train + "--momentum 1", {"--momentum", "[0, 1)"});
  expect_usage_error(train + "--weight-decay=-0.1", {"--weight-decay", "[0, 1]"});
  expect_usage_error(train + "--schedule step --gamma=-inf", {"--gamma", "(0, 1]"});
  // Flags every subcommand takes.
  expect_usage_error("inspect --threads 5000", {"--threads", "between 0 and 1024"});
  expect_usage_error("inspect --threads=-1", {"--threads", "between 0 and 1024"});
  expect_usage_error("inspect --seed=-1", {"--seed", "between 0 and 18446744073709551615"});
  expect_usage_error("bench --seed 99999999999999999999", {"--seed", "(got 99999999999999999999)"});
  // drift --times: each entry in [0, 1e10] s.
  expect_usage_error("drift --checkpoint x.safetensors --rpu-config InferenceRPUConfig --times 1,1e99",
                     {"--times", "1e99", "[0, 1e+10]"});
  expect_usage_error("drift --checkpoint x.safetensors --rpu-config InferenceRPUConfig --times 1,nan",
                     {"--times", "nan"});
  std::string many = "0";
  for (int i = 1; i <= 1000; ++i) many.append(",").append(std::to_string(i));  // 1001 entries
  expect_usage_error("drift --checkpoint x.safetensors --rpu-config InferenceRPUConfig --times " + many,
                     {"--times", "more than 1000 entries"});
  // The ends are allowed, and the ranges are in --help.
  CHECK(run("train --model mlp --epochs 1 --limit-train 64 --limit-test 100000000 --batch-size 65536 --momentum 0 "
            "--weight-decay 1 --optimizer sgd").code == 0);
  CHECK(run("inspect --model mlp --threads 1024 --seed 18446744073709551615").code == 0);
  const std::string help = run("train --help").out;
  for (const char* range : {"--batch-size INT:[1, 65536]", "--epochs INT:[1, 10000]", "--lr FLOAT:(0, 10]",
                            "--momentum FLOAT:[0, 1)", "--limit-test INT:[0, 100000000]", "--threads INT:[0, 1024]"})
    CHECK(help.find(range) != std::string::npos);
  CHECK(run("drift --help").out.find("--repeats INT:[1, 1000]") != std::string::npos);
}

// Issue 12, part 2: bad dataset files and config files that were accepted
// silently (accuracy 0.0) or blocked forever.
TEST_CASE("labels outside 0..9, an empty test set and a FIFO or directory as config exit 2 naming them") {
  const fs::path data = tmp / "data12";
  write_split(data, "train", 20);
  write_split(data, "t10k", 5, {0, 1, 12, 3, 4});
  const std::string train = "train --model mlp --epochs 1 --dataset fashion-mnist:" + data.string() + " ";
  expect_usage_error(train, {"t10k-labels-idx1-ubyte", "label 12 of sample 2", "0..9"});
  write_split(data, "t10k", 0);
  expect_usage_error(train, {"t10k has no samples"});
  write_split(data, "t10k", 5);
  CHECK(run(train + "--json").code == 0);  // the same files with good labels train

  const std::string fifo = (tmp / "config.json").string();
  fs::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  expect_usage_error("inspect --rpu-config " + fifo, {fifo, "not a regular file"});
  const std::string plain_fifo = (tmp / "config").string();  // not named .json
  REQUIRE(::mkfifo(plain_fifo.c_str(), 0600) == 0);
  expect_usage_error("inspect --rpu-config " + plain_fifo, {plain_fifo, "not a regular file"});
  const fs::path dir_json = tmp / "x.json";
  fs::create_directories(dir_json);
  expect_usage_error("inspect --rpu-config " + dir_json.string(), {dir_json.string(), "is a directory"});
  fs::remove_all(tmp);
}

// Issue 12, part 3: output paths are checked before the run, not after it.
TEST_CASE("bad output paths exit 2 before any work, naming the flag and the path") {
  fs::create_directories(tmp);
  const std::string missing_dir = (tmp / "no_such_dir" / "m.safetensors").string();
  const std::string train = "train --model mlp --epochs 1 --limit-train 64 --limit-test 50 ";
  expect_usage_error(train + "--out " + missing_dir, {"--out", missing_dir, "does not exist"});
  expect_usage_error(train + "--out " + tmp.string(), {"--out", tmp.string(), "is a directory"});
  // Before any work: no epoch is printed.
  CHECK(run(train + "--out " + missing_dir).out.find("epoch") == std::string::npos);
  // drift checks --csv and --plot before it even reads the checkpoint (which is missing here).
  const std::string drift = "drift --checkpoint " + (tmp / "missing.safetensors").string() +
                            " --rpu-config InferenceRPUConfig ";
  expect_usage_error(drift + "--csv " + (tmp / "no_such_dir" / "d.csv").string(), {"--csv", "does not exist"});
  expect_usage_error(drift + "--plot " + tmp.string(), {"--plot", tmp.string(), "is a directory"});
  const std::string fifo = (tmp / "out.csv").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  expect_usage_error(drift + "--csv " + fifo, {"--csv", fifo, "not a regular file"});
  // A good --csv passes the check and fails on the missing checkpoint instead.
  expect_usage_error(drift + "--csv " + (tmp / "d.csv").string(), {"missing.safetensors"});
  fs::remove_all(tmp);
}

TEST_CASE("train stopped after any step and resumed equals the uninterrupted run bit for bit") {
  const fs::path data = tmp / "resume_data";
  write_varied_split(data, "train", 256);
  write_varied_split(data, "t10k", 64);
  // 256 samples in batches of 32: 8 steps per epoch, 16 in all.
  const std::string common = " --dataset mnist:" + data.string() + " --epochs 2 --batch-size 32 --limit-train 256 "
                             "--limit-test 64 --seed 3 --json";
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"digital", " --model mlp --lr 0.01"},
      {"hardware-aware", " --model mlp --rpu-config InferenceRPUConfig"},
      {"hardware-aware preset", " --model lenet5 --rpu-config StandardHWATrainingPreset"},
      {"pulsed", " --model mlp_sigmoid --rpu-config SingleRPUConfig --optimizer sgd --lr 0.1"},
  };
  for (const auto& [name, args] : runs) {
    INFO(name << ":" << args);
    const std::string a = (tmp / "resume_a.safetensors").string(), b = (tmp / "resume_b.safetensors").string();
    const std::string err = (tmp / "resume.err").string();
    fs::remove(b);
    Run full = run("train" + common + args + " --out " + a);
    REQUIRE(full.code == 0);

    // Stop after step 5 (epoch 1), then at the end of epoch 1 (3 more), then
    // at step 4 of epoch 2 (4 more), then run to the end.
    Run r = run("train" + common + args + " --checkpoint-every 3 --stop-after-steps 5 --out " + b, err);
    CHECK(r.code == 130);
    CHECK(slurp(err) == "aimc: interrupted at epoch 1 step 5/8; checkpoint written to " + b +
                            "; resume with: aimc train --resume " + b + "\n");
    nlohmann::json st = training_state(b);
    CHECK(st["epoch"] == 0);
    CHECK(st["batch"] == 5);
    CHECK(st["global_step"] == 5);
    CHECK_FALSE(same_tensors(a, b));  // the weights after 5 steps are not the final ones
    r = run("train --resume " + b + " --stop-after-steps 3 --json --threads 1", err);  // any thread count
    CHECK(r.code == 130);
    CHECK(slurp(err).find("interrupted at epoch 1 step 8/8") != std::string::npos);
    st = training_state(b);
    CHECK(st["epoch"] == 1);
    CHECK(st["batch"] == 0);
    CHECK(st["history"].size() == 1);
    r = run("train --resume " + b + " --stop-after-steps 4 --json", err);
    CHECK(r.code == 130);
    CHECK(slurp(err).find("interrupted at epoch 2 step 4/8") != std::string::npos);
    CHECK(training_state(b)["global_step"] == 12);
    Run rest = run("train --resume " + b + " --json", err);
    REQUIRE(rest.code == 0);
    CHECK(same_tensors(a, b));
    const auto ja = last_json_line(full.out), jb = last_json_line(rest.out);
    CHECK(jb["train_loss"].get<double>() == ja["train_loss"].get<double>());
    CHECK(jb["test_accuracy"].get<double>() == ja["test_accuracy"].get<double>());
    REQUIRE(jb["history"].size() == 2);
    for (int e = 0; e < 2; ++e) {
      CHECK(jb["history"][e]["train_loss"].get<double>() == ja["history"][e]["train_loss"].get<double>());
      CHECK(jb["history"][e]["lr"].get<double>() == ja["history"][e]["lr"].get<double>());
    }
    CHECK(training_state(b)["global_step"] == 16);
  }
}

TEST_CASE("a finished run with a constant lr resumes with more epochs as the longer run") {
  const fs::path data = tmp / "resume_data";
  write_varied_split(data, "train", 256);
  write_varied_split(data, "t10k", 64);
  const std::string common = " --dataset mnist:" + data.string() + " --model mlp --batch-size 32 --limit-train 256 "
                             "--limit-test 64 --seed 4 --schedule none --lr 0.01";
  const std::string a = (tmp / "extend_a.safetensors").string(), b = (tmp / "extend_b.safetensors").string();
  REQUIRE(run("train" + common + " --epochs 2 --out " + a).code == 0);
  REQUIRE(run("train" + common + " --epochs 1 --out " + b).code == 0);
  CHECK_FALSE(same_tensors(a, b));
  REQUIRE(run("train --resume " + b + " --epochs 2").code == 0);
  CHECK(same_tensors(a, b));
  CHECK(training_state(b)["options"]["epochs"] == 2);
  // On analog tiles the finished run's final evaluation drew from the tiles'
  // streams, as the longer run's evaluation of that epoch does with --eval-each-epoch.
  const std::string analog = common + " --rpu-config InferenceRPUConfig --eval-each-epoch";
  REQUIRE(run("train" + analog + " --epochs 2 --out " + a).code == 0);
  REQUIRE(run("train" + analog + " --epochs 1 --out " + b).code == 0);
  REQUIRE(run("train --resume " + b + " --epochs 2").code == 0);
  CHECK(same_tensors(a, b));
}

TEST_CASE("a real SIGTERM or SIGINT: a checkpoint, exit 143 or 130, and the resumed run equals the full one") {
  const fs::path data = tmp / "signal_data";
  write_varied_split(data, "train", 512);
  write_varied_split(data, "t10k", 64);
  // 512 samples in batches of 4, 2 epochs: 256 steps, each writing the
  // checkpoint, so the run lasts long enough to be stopped midway.
  const std::string common = " --dataset mnist:" + data.string() + " --model mlp --epochs 2 --batch-size 4 "
                             "--limit-test 64 --seed 6 --threads 1";
  const std::string a = (tmp / "signal_a.safetensors").string(), b = (tmp / "signal_b.safetensors").string();
  const std::string out = (tmp / "signal.out").string(), err = (tmp / "signal.err").string();
  REQUIRE(run("train" + common + " --out " + a).code == 0);
  for (const int signo : {SIGTERM, SIGINT}) {
    INFO("signal " << signo);
    fs::remove(b);

    const std::string cmd = std::string(AIMC_CLI_PATH) + " train" + common + " --checkpoint-every 1 --out " + b +
                            " >" + out + " 2>" + err;
    const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
    pid_t pid = 0;
    // exec replaces sh, so the signal reaches aimc itself.
    const std::string exec_cmd = "exec " + cmd;
    argv[2] = exec_cmd.c_str();
    REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!fs::exists(b) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    REQUIRE(fs::exists(b));
    REQUIRE(::kill(pid, signo) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 128 + signo);  // 143 SIGTERM, 130 SIGINT
    const std::string msg = slurp(err);
    INFO("stderr: " << msg);
    CHECK(msg.find("aimc: interrupted at epoch ") != std::string::npos);
    CHECK(msg.find("resume with: aimc train --resume " + b) != std::string::npos);
    const nlohmann::json st = training_state(b);
    CHECK(st["global_step"].get<int>() >= 1);
    CHECK(st["global_step"].get<int>() < 256);
    CHECK_FALSE(same_tensors(a, b));
    REQUIRE(run("train --resume " + b).code == 0);
    CHECK(same_tensors(a, b));
  }
}

TEST_CASE("--resume refuses a checkpoint without run state and options that differ from the saved run") {
  const fs::path data = tmp / "resume_data";
  write_varied_split(data, "train", 256);
  write_varied_split(data, "t10k", 64);
  const std::string ck = (tmp / "refuse.safetensors").string(), old = (tmp / "old_style.safetensors").string();
  REQUIRE(run("train --dataset mnist:" + data.string() + " --model mlp --epochs 2 --batch-size 32 --limit-train 256 "
              "--limit-test 64 --seed 3 --stop-after-steps 2 --out " + ck).code == 130);
  expect_usage_error("train --resume " + ck + " --seed 4", {"--seed 4", "differs from 3", ck});
  expect_usage_error("train --resume " + ck + " --batch-size 16", {"--batch-size 16", "differs from 32"});
  expect_usage_error("train --resume " + ck + " --model lenet5", {"--model \"lenet5\"", "differs from \"mlp\""});
  expect_usage_error("train --resume " + ck + " --lr 0.5", {"--lr 0.5", "differs from 0.002"});
  expect_usage_error("train --resume " + ck + " --epochs 3", {"--epochs 3", "cosine schedule"});
  expect_usage_error("train --resume " + ck + " --rpu-config InferenceRPUConfig", {"--rpu-config", "digital training"});
  expect_usage_error("train --resume " + ck + " --eval-each-epoch", {"--eval-each-epoch"});
  // The same values as saved are accepted (and stopping again writes the same place).
  CHECK(run("train --resume " + ck + " --seed 3 --batch-size 32 --stop-after-steps 1").code == 130);
  CHECK(training_state(ck)["global_step"] == 3);

  // A checkpoint as written before the run state (no "aimc.training"): eval
  // still loads it, --resume refuses it.
  auto file = aimc::read_safetensors(ck);
  file.metadata.erase("aimc.training");
  aimc::write_safetensors(old, file.tensors, file.metadata);
  expect_usage_error("train --resume " + old, {"--resume " + old, "no training state"});
  CHECK(run("eval --checkpoint " + old + " --dataset mnist:" + data.string() + " --limit-test 64").code == 0);

  // A run state out of range is an input error naming the field.
  nlohmann::json bad = nlohmann::json::parse(aimc::read_safetensors(ck).metadata.at("aimc.training"));
  bad["epoch"] = 7;
  file.metadata["aimc.training"] = bad.dump();
  aimc::write_safetensors(old, file.tensors, file.metadata);
  expect_usage_error("train --resume " + old, {"invalid checkpoint", "'epoch' 7"});
  CHECK(run("train --checkpoint-every 2 --epochs 1").code == 2);  // needs --out
}

// Drift runs keep each finished (model, repeat) in CSV.partial as it
// finishes; --resume runs only the rest and must end with the bytes of the
// uninterrupted run. Two labels of one checkpoint x 3 repeats = 6 jobs, run
// in order with --threads 1 so --stop-after-repeats K leaves exactly K.
namespace {

struct DriftResumeSetup {
  fs::path dir = tmp / "drift_resume";
  std::string ckpt = (dir / "m.safetensors").string();
  std::string other = (dir / "other.safetensors").string();  // another seed: other weights
  std::string csv = (dir / "run.csv").string();
  std::string journal = csv + ".partial";
  std::string err = (dir / "err.txt").string();
  std::string args;  // the run without --csv, --threads and --json

  DriftResumeSetup() {
    fs::create_directories(dir);
    write_varied_split(dir / "data", "train", 256);
    write_varied_split(dir / "data", "t10k", 64);
    const std::string train = "train --dataset mnist:" + (dir / "data").string() +
                              " --model mlp --epochs 1 --batch-size 32 --limit-train 256 --limit-test 64 --out ";
    REQUIRE(run(train + ckpt + " --seed 3").code == 0);
    REQUIRE(run(train + other + " --seed 4").code == 0);
    args = "drift --dataset mnist:" + (dir / "data").string() + " --checkpoint " + ckpt + " " + ckpt +
           " --label a b --rpu-config InferenceRPUConfig --times 0,3600,86400 --repeats 3 --limit-test 64 --seed 3";
  }
  ~DriftResumeSetup() { fs::remove_all(dir); }
};

// The lines of a file (each without its newline; a last line without one too).
std::vector<std::string> file_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// s with the first `from` replaced by `to` (which must be there).
std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

// The table output without its last line (the run's seconds).
std::string without_seconds(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s.substr(0, s.rfind('\n') + 1);
}

}  // namespace

TEST_CASE("drift stopped after any repeat and resumed writes the uninterrupted run's CSV, JSON and table") {
  DriftResumeSetup s;
  const std::string full_csv = (s.dir / "full.csv").string();
  const Run full = run(s.args + " --threads 2 --json --csv " + full_csv);
  REQUIRE(full.code == 0);
  const Run full_table = run(s.args + " --threads 2");
  REQUIRE(full_table.code == 0);
  const std::string expected = slurp(full_csv);
  const nlohmann::json jf = last_json_line(full.out);
  REQUIRE(jf["models"].size() == 2);
  CHECK_FALSE(fs::exists(full_csv + ".partial"));  // removed once the CSV is written
  // The repeats differ (other chips), so a repeat in the wrong slot would show.
  const auto& acc = jf["models"][0]["accuracy"];
  CHECK((acc[0] != acc[1] || acc[1] != acc[2]));
  CHECK(jf["models"][1]["accuracy"] == acc);  // both labels are the same checkpoint on the same chips

  for (int k = 1; k <= 5; ++k) {
    INFO("stopped after " << k << " repeats");
    fs::remove(s.csv);
    const Run stopped = run(s.args + " --threads 1 --stop-after-repeats " + std::to_string(k) + " --csv " + s.csv,
                            s.err);
    CHECK(stopped.code == 130);
    CHECK(slurp(s.err).find("aimc: interrupted with " + std::to_string(k) + "/6 repeats finished; they are kept in " +
                            s.journal + "; resume with: the same aimc drift command plus --resume\n") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(s.csv));
    const auto lines = file_lines(s.journal);
    REQUIRE(lines.size() == std::size_t(1 + k));  // the header and one line per finished repeat
    // Job order is model-major: the last kept line is model (k-1)/3, repeat (k-1)%3.
    const nlohmann::json last = nlohmann::json::parse(lines.back());
    CHECK(last["model"] == (k - 1) / 3);
    CHECK(last["repeat"] == (k - 1) % 3);
    CHECK(last["accuracy"] == jf["models"][(k - 1) / 3]["accuracy"][(k - 1) % 3]);

    const Run resumed = run(s.args + " --threads 2 --json --resume --csv " + s.csv, s.err);
    REQUIRE(resumed.code == 0);
    CHECK(slurp(s.err) == "csv: " + s.csv + "\n");  // with --json: no note, no progress
    CHECK(slurp(s.csv) == expected);
    CHECK_FALSE(fs::exists(s.journal));
    const nlohmann::json jr = last_json_line(resumed.out);
    for (int m = 0; m < 2; ++m)
      for (const char* key : {"accuracy", "accuracy_mean", "accuracy_std"}) CHECK(jr["models"][m][key] == jf["models"][m][key]);
  }

  // Stopped twice, the second time with the table output: the table is the
  // uninterrupted run's too.
  fs::remove(s.csv);
  CHECK(run(s.args + " --threads 1 --stop-after-repeats 2 --csv " + s.csv).code == 130);
  CHECK(run(s.args + " --threads 1 --stop-after-repeats 2 --resume --csv " + s.csv).code == 130);
  CHECK(file_lines(s.journal).size() == 5);
  const Run table = run(s.args + " --resume --csv " + s.csv, s.err);
  REQUIRE(table.code == 0);
  CHECK(slurp(s.err).find("drift: resuming " + s.journal + ": 4 of 6 repeats done\n") != std::string::npos);
  CHECK(without_seconds(table.out) == without_seconds(full_table.out) + "csv: " + s.csv + "\n");
  CHECK(slurp(s.csv) == expected);
}

TEST_CASE("drift --resume drops a journal's cut-off last line and refuses any other damage, naming the line") {
  DriftResumeSetup s;
  const std::string full_csv = (s.dir / "full.csv").string();
  REQUIRE(run(s.args + " --csv " + full_csv).code == 0);
  const std::string expected = slurp(full_csv);

  // A kill while the fourth repeat's line was written: three whole lines and half of one.
  REQUIRE(run(s.args + " --threads 1 --stop-after-repeats 4 --csv " + s.csv).code == 130);
  std::string text = slurp(s.journal);
  const std::size_t last_start = text.rfind('\n', text.size() - 2) + 1;
  const std::string cut = text.substr(0, last_start + (text.size() - last_start) / 2);
  std::ofstream(s.journal, std::ios::binary) << cut;
  const Run resumed = run(s.args + " --json --resume --csv " + s.csv, s.err);
  REQUIRE(resumed.code == 0);
  CHECK(slurp(s.err) == "aimc: note: dropped the unfinished last line of " + s.journal +
                            " (the run was stopped while writing it); that repeat runs again\ncsv: " + s.csv + "\n");
  CHECK(slurp(s.csv) == expected);
  fs::remove(s.csv);

  // A damaged line with its newline is not a cut-off write: exit 2 naming the line.
  REQUIRE(run(s.args + " --threads 1 --stop-after-repeats 3 --csv " + s.csv).code == 130);
  const auto lines = file_lines(s.journal);
  REQUIRE(lines.size() == 4);
  auto write_lines = [&](std::vector<std::string> l) {
    std::ofstream out(s.journal, std::ios::binary);
    for (const auto& line : l) out << line << "\n";
  };
  auto with_line = [&](std::size_t i, const std::string& text) {
    auto l = lines;
    l[i] = text;
    return l;
  };
  write_lines(with_line(2, lines[2].substr(0, lines[2].size() / 2)));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"drift journal " + s.journal + " line 3: not JSON"});
  write_lines(with_line(2, lines[1]));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 3: model 0 repeat 0 is already on line 2"});
  nlohmann::json bad = nlohmann::json::parse(lines[3]);
  bad["accuracy"][1] = 1.5;
  write_lines(with_line(3, bad.dump()));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 4: every 'accuracy' must be a number in [0, 1]"});
  bad = nlohmann::json::parse(lines[3]);
  bad["repeat"] = 3;
  write_lines(with_line(3, bad.dump()));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 4: 'repeat' must be an integer in [0, 2], got 3"});
  bad = nlohmann::json::parse(lines[3]);
  bad["accuracy"].erase(0);
  write_lines(with_line(3, bad.dump()));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 4: 'accuracy' must be an array of 3 numbers"});
  write_lines(with_line(0, "{\"kind\": \"something else\"}"));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 1: not an aimc drift journal header"});
  std::ofstream(s.journal, std::ios::binary) << "";
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 1: no header"});
  // The refused runs wrote nothing.
  CHECK_FALSE(fs::exists(s.csv));
}

TEST_CASE("drift --resume refuses a journal of another run, naming what differs; --resume needs --csv") {
  DriftResumeSetup s;
  expect_usage_error(s.args + " --resume", {"--resume needs --csv"});

  REQUIRE(run(s.args + " --threads 1 --stop-after-repeats 2 --csv " + s.csv).code == 130);
  const std::string journal = slurp(s.journal);
  const std::string csv = " --csv " + s.csv + " --resume";
  // Without --resume the journal is not overwritten.
  expect_usage_error(s.args + " --csv " + s.csv, {"--csv " + s.csv, "the journal " + s.journal, "--resume"});
  // Each option that shapes the numbers or the CSV, changed.
  auto changed = [&](const std::string& from, const std::string& to) { return replaced(s.args, from, to); };
  const std::string other_run = "the journal " + s.journal + " belongs to another run: ";
  expect_usage_error(changed("--seed 3", "--seed 4") + csv, {other_run, "--seed 4 differs from 3 in the journal"});
  expect_usage_error(changed("--times 0,3600,86400", "--times 0,3600") + csv,
                     {other_run, "--times 0,3600 differs from 0,3600,86400 in the journal"});
  expect_usage_error(changed("--repeats 3", "--repeats 2") + csv, {other_run, "--repeats 2 differs from 3"});
  expect_usage_error(changed("--rpu-config InferenceRPUConfig", "--rpu-config StandardHWATrainingPreset") + csv,
                     {other_run, "--rpu-config"});
  expect_usage_error(changed("--limit-test 64", "--limit-test 32") + csv,
                     {other_run, "the test set (32 samples", "check --dataset and --limit-test"});
  expect_usage_error(changed("--label a b", "--label a c") + csv,
                     {other_run, "the label \"c\" of checkpoint 2 differs from \"b\""});
  expect_usage_error(changed(" " + s.ckpt + " --label a b", " --label a") + csv,
                     {other_run, "1 --checkpoint differ from the journal's 2"});
  expect_usage_error(changed(s.ckpt + " " + s.ckpt, s.ckpt + " " + s.other) + csv,
                     {other_run, "checkpoint 2 " + s.other + " is not the file the journal's run used"});
  // The same file rewritten with other weights is another checkpoint too.
  const std::string saved = (s.dir / "saved.safetensors").string();
  fs::copy_file(s.ckpt, saved);
  fs::copy_file(s.other, s.ckpt, fs::copy_options::overwrite_existing);
  expect_usage_error(s.args + csv, {other_run, "checkpoint 1 " + s.ckpt + " is not the file", "content hash"});
  fs::copy_file(saved, s.ckpt, fs::copy_options::overwrite_existing);
  // Refused runs leave the journal as it was; the right options continue it.
  CHECK(slurp(s.journal) == journal);
  // Neither the thread count nor where the checkpoint lies is part of the run.
  const std::string moved = (s.dir / "moved.safetensors").string();
  fs::rename(s.ckpt, moved);
  CHECK(run(replaced(s.args, s.ckpt + " " + s.ckpt, moved + " " + moved) + csv + " --threads 3").code == 0);
  fs::rename(moved, s.ckpt);
  CHECK_FALSE(fs::exists(s.journal));

  // --resume without a journal runs everything, with a note.
  fs::remove(s.csv);
  const Run fresh = run(s.args + " --json" + csv, s.err);
  CHECK(fresh.code == 0);
  CHECK(slurp(s.err) == "aimc: note: --resume: no journal " + s.journal +
                            " (no interrupted run to continue); running all repeats\ncsv: " + s.csv + "\n");
  CHECK(fs::exists(s.csv));
}

TEST_CASE("a real SIGTERM during drift: the journal kept, exit 143, and the resumed CSV equals the full run's") {
  DriftResumeSetup s;
  // 2 x 10 repeats on one thread (about 0.1 s each): long enough to be stopped midway.
  const std::string args = replaced(s.args, "--repeats 3", "--repeats 10") + " --threads 1";
  const std::string full_csv = (s.dir / "full.csv").string();
  REQUIRE(run(args + " --csv " + full_csv).code == 0);

  const std::string cmd = "exec " + std::string(AIMC_CLI_PATH) + " " + args + " --csv " + s.csv + " 2>" + s.err;
  const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0);
  // Stop it once the journal holds a finished repeat (the header and one line).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto whole_lines = [&] {
    const std::string t = slurp(s.journal);
    return std::count(t.begin(), t.end(), '\n');
  };
  while (whole_lines() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(::kill(pid, SIGTERM) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  const std::string msg = slurp(s.err);
  INFO("stderr: " << msg);
  CHECK(msg.find("aimc: interrupted with ") != std::string::npos);
  CHECK(msg.find("they are kept in " + s.journal + "; resume with: the same aimc drift command plus --resume") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(s.csv));
  const auto kept = static_cast<std::int64_t>(file_lines(s.journal).size()) - 1;
  CHECK(kept >= 1);
  CHECK(kept < 20);
  REQUIRE(run(args + " --resume --csv " + s.csv).code == 0);
  CHECK(slurp(s.csv) == slurp(full_csv));
}

// `aimc sweep EXPERIMENT.json`: checkpoints x RPU-config variations x times x
// repeats. One checkpoint, vary forward.out_noise over 2 values, 2 repeats,
// 2 times on 64 test samples: 4 points.
namespace {

struct SweepSetup {
  fs::path dir = tmp / "sweep";
  std::string data = (dir / "data").string();
  std::string ckpt = (dir / "m.safetensors").string();
  std::string exp = (dir / "exp.json").string();
  std::string results = (dir / "exp.results.jsonl").string();  // the default: next to the experiment
  std::string prefix = (dir / "out").string();
  std::string err = (dir / "err.txt").string();

  SweepSetup() {
    fs::create_directories(dir);
    write_varied_split(data, "train", 256);
    write_varied_split(data, "t10k", 64);
    REQUIRE(run("train --dataset mnist:" + data + " --model mlp --epochs 1 --batch-size 32 --limit-train 256 "
                "--limit-test 64 --seed 3 --out " + ckpt).code == 0);
  }
  ~SweepSetup() { fs::remove_all(dir); }

  // The experiment of the tests; paths relative to the experiment's directory.
  static nlohmann::json experiment() {
    return {{"checkpoints", {"m.safetensors"}},
            {"rpu_config", "InferenceRPUConfig"},
            {"vary", {{"forward.out_noise", {0.0, 0.1}}}},
            {"times", {0, 86400}},
            {"repeats", 2},
            {"seed", 5},
            {"dataset", "mnist:data"},
            {"limit_test", 64},
            {"output", "out"}};
  }
  void write(const nlohmann::json& j) const { std::ofstream(exp) << j.dump(1); }
  void remove_outputs() const {
    for (const std::string& f : {results, prefix + ".json", prefix + ".csv"}) fs::remove(f);
  }
};

}  // namespace

TEST_CASE("sweep: each variation's numbers equal aimc drift with that config and seed; outputs as documented") {
  SweepSetup s;
  s.write(SweepSetup::experiment());
  const Run r = run("sweep " + s.exp + " --threads 2 --json", s.err);
  REQUIRE(r.code == 0);
  const nlohmann::json summary = last_json_line(r.out);
  CHECK(summary["points"] == 4);
  CHECK(summary["points_run"] == 4);
  CHECK(summary["results"] == s.results);
  const nlohmann::json out = nlohmann::json::parse(slurp(s.prefix + ".json"));
  CHECK(out["fields"] == nlohmann::json::array({"forward.out_noise"}));
  CHECK(out["times"] == nlohmann::json::array({0.0, 86400.0}));
  REQUIRE(out["results"].size() == 2);  // checkpoint x variation

  // The known cross-check: aimc drift on a config file with the same value and seed.
  for (int v = 0; v < 2; ++v) {
    const double noise = v == 0 ? 0.0 : 0.1;
    INFO("forward.out_noise " << noise);
    const nlohmann::json& row = out["results"][v];
    CHECK(row["values"] == nlohmann::json::array({noise}));
    CHECK(row["label"] == "m");
    const std::string config = (s.dir / ("cfg" + std::to_string(v) + ".json")).string();
    std::ofstream(config) << nlohmann::json{{"family", "InferenceRPUConfig"}, {"forward", {{"out_noise", noise}}}};
    const Run d = run("drift --dataset mnist:" + s.data + " --checkpoint " + s.ckpt + " --rpu-config " + config +
                      " --times 0,86400 --repeats 2 --limit-test 64 --seed 5 --json");
    REQUIRE(d.code == 0);
    const nlohmann::json jd = last_json_line(d.out);
    CHECK(row["accuracy"] == jd["accuracy"]);  // [repeat][time], bit for bit
    CHECK(row["accuracy_mean"] == jd["accuracy_mean"]);
    CHECK(row["accuracy_std"] == jd["accuracy_std"]);
  }
  // The varied field reaches the tiles: the two configs give other accuracies.
  CHECK(out["results"][0]["accuracy"] != out["results"][1]["accuracy"]);

  // The CSV: one row per checkpoint x variation x time, the field's value as a column.
  const auto csv = file_lines(s.prefix + ".csv");
  REQUIRE(csv.size() == 5);
  CHECK(csv[0] == "label,forward.out_noise,time_s,accuracy_mean,accuracy_std,acc_r0,acc_r1");
  CHECK(csv[3].rfind("m,0.1,0,", 0) == 0);
  CHECK(csv[4].rfind("m,0.1,86400,", 0) == 0);
  // The results file: the experiment's line, then one line per point.
  const auto lines = file_lines(s.results);
  REQUIRE(lines.size() == 5);
  CHECK(nlohmann::json::parse(lines[0])["kind"] == "aimc sweep results");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const nlohmann::json p = nlohmann::json::parse(lines[i]);
    CHECK(p["accuracy"] == out["results"][p["variation"].get<int>()]["accuracy"][p["repeat"].get<int>()]);
  }

  // A rerun with every point in the file runs none and writes the same tables.
  const std::string json_bytes = slurp(s.prefix + ".json"), csv_bytes = slurp(s.prefix + ".csv");
  const Run again = run("sweep " + s.exp + " --json", s.err);
  REQUIRE(again.code == 0);
  CHECK(last_json_line(again.out)["points_run"] == 0);
  CHECK(slurp(s.prefix + ".json") == json_bytes);
  CHECK(slurp(s.prefix + ".csv") == csv_bytes);
}

TEST_CASE("sweep: the tables do not depend on the thread count; two fields make their Cartesian product") {
  SweepSetup s;
  nlohmann::json j = SweepSetup::experiment();
  j["vary"] = {{"forward.out_noise", {0.0, 0.1}}, {"noise_model.prog_noise_scale", {0.5, 1.0}}};
  s.write(j);
  REQUIRE(run("sweep " + s.exp + " --threads 1").code == 0);
  const std::string json1 = slurp(s.prefix + ".json"), csv1 = slurp(s.prefix + ".csv");
  const nlohmann::json out = nlohmann::json::parse(json1);
  REQUIRE(out["results"].size() == 4);
  // The last field varies fastest, in the order the fields are written.
  CHECK(out["results"][1]["values"] == nlohmann::json::array({0.0, 1.0}));
  CHECK(out["results"][2]["values"] == nlohmann::json::array({0.1, 0.5}));
  CHECK(file_lines(s.prefix + ".csv")[0].rfind("label,forward.out_noise,noise_model.prog_noise_scale,time_s", 0) == 0);
  for (const int threads : {2, 3}) {
    INFO("threads " << threads);
    s.remove_outputs();
    REQUIRE(run("sweep " + s.exp + " --threads " + std::to_string(threads)).code == 0);
    CHECK(slurp(s.prefix + ".json") == json1);
    CHECK(slurp(s.prefix + ".csv") == csv1);
  }
}

TEST_CASE("sweep stopped after any point and rerun writes the uninterrupted run's tables") {
  SweepSetup s;
  s.write(SweepSetup::experiment());
  REQUIRE(run("sweep " + s.exp + " --threads 2").code == 0);
  const std::string json_full = slurp(s.prefix + ".json"), csv_full = slurp(s.prefix + ".csv");
  for (int k = 1; k <= 3; ++k) {
    INFO("stopped after " << k << " points");
    s.remove_outputs();
    const Run stopped = run("sweep " + s.exp + " --threads 1 --stop-after-points " + std::to_string(k), s.err);
    CHECK(stopped.code == 130);
    CHECK(slurp(s.err).find("aimc: interrupted with " + std::to_string(k) + "/4 points finished; they are kept in " +
                            s.results + "; resume with: aimc sweep " + s.exp) != std::string::npos);
    CHECK(file_lines(s.results).size() == std::size_t(1 + k));
    CHECK_FALSE(fs::exists(s.prefix + ".json"));
    CHECK_FALSE(fs::exists(s.prefix + ".csv"));
    const Run rerun = run("sweep " + s.exp + " --threads 2", s.err);
    REQUIRE(rerun.code == 0);
    CHECK(slurp(s.err).find("sweep: " + std::to_string(k) + " of 4 points done in " + s.results) != std::string::npos);
    CHECK(slurp(s.prefix + ".json") == json_full);
    CHECK(slurp(s.prefix + ".csv") == csv_full);
  }

  // A kill while the third point's line was written: two whole lines and half of one.
  s.remove_outputs();
  REQUIRE(run("sweep " + s.exp + " --threads 1 --stop-after-points 3").code == 130);
  std::string text = slurp(s.results);
  const std::size_t last_start = text.rfind('\n', text.size() - 2) + 1;
  std::ofstream(s.results, std::ios::binary) << text.substr(0, last_start + (text.size() - last_start) / 2);
  const Run resumed = run("sweep " + s.exp + " --json", s.err);
  REQUIRE(resumed.code == 0);
  CHECK(slurp(s.err) == "aimc: note: dropped the unfinished last line of " + s.results +
                            " (the run was stopped while writing it); that point runs again\n");
  CHECK(last_json_line(resumed.out)["points_run"] == 2);
  CHECK(slurp(s.prefix + ".csv") == csv_full);

  // A damaged line with its newline is not a cut-off write: exit 2 naming the line.
  s.remove_outputs();
  REQUIRE(run("sweep " + s.exp + " --threads 1 --stop-after-points 2").code == 130);
  const auto lines = file_lines(s.results);
  auto write_lines = [&](std::vector<std::string> l) {
    std::ofstream out(s.results, std::ios::binary);
    for (const auto& line : l) out << line << "\n";
  };
  write_lines({lines[0], lines[1], lines[1]});
  expect_usage_error("sweep " + s.exp, {"results file " + s.results + " line 3: point 0 is already on line 2"});
  nlohmann::json bad = nlohmann::json::parse(lines[2]);
  bad["accuracy"][0] = 1.5;
  write_lines({lines[0], lines[1], bad.dump()});
  expect_usage_error("sweep " + s.exp, {"line 3: every 'accuracy' must be a number in [0, 1], got 1.5"});
  bad = nlohmann::json::parse(lines[2]);
  bad["repeat"] = 1 - bad["repeat"].get<int>();
  write_lines({lines[0], lines[1], bad.dump()});
  expect_usage_error("sweep " + s.exp, {"line 3: 'repeat' of point 1 must be"});
  CHECK_FALSE(fs::exists(s.prefix + ".csv"));
}

TEST_CASE("sweep refuses a results file of another experiment, naming what differs") {
  SweepSetup s;
  s.write(SweepSetup::experiment());
  REQUIRE(run("sweep " + s.exp + " --threads 1 --stop-after-points 2").code == 130);
  const std::string kept = slurp(s.results);
  const std::string other = "results file " + s.results + " belongs to another experiment: ";
  auto refused = [&](const std::string& key, const nlohmann::json& value, const std::vector<std::string>& needles) {
    nlohmann::json j = SweepSetup::experiment();
    j[key] = value;
    s.write(j);
    expect_usage_error("sweep " + s.exp, needles);
  };
  refused("seed", 6, {other, "seed is 6 here and 5 in the file"});
  refused("repeats", 3, {other, "repeats is 3 here and 2 in the file"});
  refused("times", {0, 3600}, {other, "times is [0.0,3600.0] here and [0.0,86400.0] in the file"});
  refused("vary", {{"forward.out_noise", {0.0, 0.2}}}, {other, "vary[0].values is [0.0,0.2] here"});
  refused("rpu_config", "StandardHWATrainingPreset", {other, "rpu_config."});
  refused("limit_test", 32, {other, "test_set.", "check dataset and limit_test"});
  // The same file rewritten with other weights is another checkpoint.
  const std::string saved = (s.dir / "saved.safetensors").string();
  fs::copy_file(s.ckpt, saved);
  REQUIRE(run("train --dataset mnist:" + s.data + " --model mlp --epochs 1 --batch-size 32 --limit-train 256 "
              "--limit-test 64 --seed 4 --out " + s.ckpt).code == 0);
  refused("seed", 5, {other, "checkpoints[0].", "a checkpoint file's content differs"});
  fs::copy_file(saved, s.ckpt, fs::copy_options::overwrite_existing);
  // Refused runs leave the file as it was; the experiment's own file continues.
  CHECK(slurp(s.results) == kept);
  // Outputs, the results path and the thread count are not part of the experiment.
  nlohmann::json j = SweepSetup::experiment();
  j["output"] = "elsewhere";
  j["results"] = "exp.results.jsonl";
  s.write(j);
  CHECK(run("sweep " + s.exp + " --threads 3").code == 0);
  CHECK(file_lines(s.results).size() == 5);
}

TEST_CASE("a real SIGTERM during sweep: the results file kept, exit 143, and the rerun's tables equal the full run's") {
  SweepSetup s;
  // 2 values x 10 repeats on one thread: long enough to be stopped midway.
  nlohmann::json j = SweepSetup::experiment();
  j["repeats"] = 10;
  j["results"] = "full.jsonl";
  j["output"] = "full";
  s.write(j);
  REQUIRE(run("sweep " + s.exp + " --threads 1").code == 0);
  j.erase("results");
  j["output"] = "out";
  s.write(j);

  const std::string cmd = "exec " + std::string(AIMC_CLI_PATH) + " sweep " + s.exp + " --threads 1 2>" + s.err;
  const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  auto whole_lines = [&] {
    const std::string t = slurp(s.results);
    return std::count(t.begin(), t.end(), '\n');
  };
  while (whole_lines() < 2 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(::kill(pid, SIGTERM) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 143);
  const std::string msg = slurp(s.err);
  INFO("stderr: " << msg);
  CHECK(msg.find("they are kept in " + s.results + "; resume with: aimc sweep " + s.exp) != std::string::npos);
  CHECK_FALSE(fs::exists(s.prefix + ".csv"));
  const auto kept = static_cast<std::int64_t>(file_lines(s.results).size()) - 1;
  CHECK(kept >= 1);
  CHECK(kept < 20);
  REQUIRE(run("sweep " + s.exp + " --threads 2").code == 0);
  CHECK(slurp(s.prefix + ".csv") == slurp((s.dir / "full.csv").string()));
}

TEST_CASE("sweep: bad experiment files exit 2 with one line naming the field, and write nothing") {
  SweepSetup s;
  auto refused = [&](const nlohmann::json& j, const std::vector<std::string>& needles) {
    s.write(j);
    expect_usage_error("sweep " + s.exp, needles);
    CHECK_FALSE(fs::exists(s.results));
    CHECK_FALSE(fs::exists(s.prefix + ".json"));
  };
  const std::string where = "experiment " + s.exp + ": ";
  nlohmann::json j = SweepSetup::experiment();
  j["vary"] = {{"forward.out_noiz", {0.1}}};
  refused(j, {where + "vary \"forward.out_noiz\" = 0.1 gives an invalid RPU config", "unknown field \"out_noiz\""});
  j["vary"] = {{"noise_model.prog_noise_scal", {0.1}}};
  refused(j, {"InferenceRPUConfig.noise_model", "unknown field \"prog_noise_scal\""});
  j["vary"] = {{"forward.out_noise", nlohmann::json::array()}};
  refused(j, {where + "vary \"forward.out_noise\" must be a non-empty list of values"});
  j["vary"] = {{"forward.out_noise", {"high"}}};
  refused(j, {"vary \"forward.out_noise\" = \"high\"", "InferenceRPUConfig.forward.out_noise: expected a number"});
  j["vary"] = {{"forward.out_noise", {-1}}};
  refused(j, {"vary \"forward.out_noise\" = -1", "allowed >= 0"});
  j["vary"] = {{"forward.out_noise", 0.1}};
  refused(j, {"vary \"forward.out_noise\" must be a non-empty list of values, got a number 0.1"});
  j = SweepSetup::experiment();
  j["checkpoints"] = {"missing.safetensors"};
  refused(j, {where + "checkpoints[0] names " + (s.dir / "missing.safetensors").string() + ", which is missing"});
  j = SweepSetup::experiment();
  j["times"] = {0, "Infinity"};
  refused(j, {where + "times[1] must be a finite number of seconds in [0, 1e+10]"});
  j["times"] = {0, 1e11};
  refused(j, {where + "times[1] must be a finite number of seconds in [0, 1e+10], got 100000000000.0"});
  j["times"] = nlohmann::json::array();
  refused(j, {where + "times must be a non-empty list"});
  s.write(SweepSetup::experiment());
  std::string text = slurp(s.exp);
  std::ofstream(s.exp) << replaced(text, "86400", "1e999");  // beyond a double: not a finite time
  expect_usage_error("sweep " + s.exp, {"experiment " + s.exp, "1e999"});
  j = SweepSetup::experiment();
  j["repeats"] = 0;
  refused(j, {where + "repeats must be an integer in [1, 1000], got 0"});
  j = SweepSetup::experiment();
  j["repeat"] = 2;
  refused(j, {where + "\"repeat\" is not a field of an experiment"});
  j = SweepSetup::experiment();
  j.erase("rpu_config");
  refused(j, {where + "vary needs \"rpu_config\""});
  j.erase("vary");
  refused(j, {"checkpoint", "is digital: the sweep needs analog tiles; give \"rpu_config\""});
  j = SweepSetup::experiment();
  j["rpu_config"] = {{"family", "InferenceRPUConfig"}, {"forward", {{"x", 1}}}};
  refused(j, {where + "rpu_config is not a valid RPU config", "unknown field \"x\""});
  j = SweepSetup::experiment();
  j["results"] = "nowhere/r.jsonl";
  refused(j, {"\"results\"", "does not exist"});
  j = SweepSetup::experiment();
  j["output"] = "exp";  // exp.json is the experiment
  refused(j, {"would overwrite the experiment file itself"});
  expect_usage_error("sweep " + (s.dir / "absent.json").string(), {"absent.json", "no such file"});
}

TEST_CASE("sweep --plot draws one PNG per varied field, or keeps the data with a note without gnuplot") {
  SweepSetup s;
  nlohmann::json j = SweepSetup::experiment();
  j["vary"] = {{"forward.out_noise", {0.0, 0.1}},
               {"drift_compensation", {nullptr, {{"type", "GlobalDriftCompensation"}}}}};
  j["repeats"] = 1;
  s.write(j);
  // Without gnuplot on PATH: the data and scripts, a note, exit 0.
  const Run r = run_command("PATH=/nonexistent " + std::string(AIMC_CLI_PATH) + " sweep " + s.exp + " --plot --json",
                            s.err);
  REQUIRE(r.code == 0);
  CHECK(slurp(s.err).find("aimc: note: gnuplot not found") != std::string::npos);
  const nlohmann::json out = nlohmann::json::parse(slurp(s.prefix + ".json"));
  for (const std::string field : {"forward.out_noise", "drift_compensation"}) {
    INFO(field);
    CHECK(fs::exists(s.prefix + "." + field + ".gp"));
    // Per series (a value of the other field x a time): one row per value of this field.
    std::ifstream dat(s.prefix + "." + field + ".dat");
    int rows = 0;
    for (std::string line; std::getline(dat, line);)
      if (!line.empty() && line[0] != '#') ++rows;
    CHECK(rows == 2 * 2 * 2);
  }
  // The first series of out_noise: drift_compensation null at 0 s. The test
  // writes the keys sorted, so drift_compensation is the first field (the
  // slower one): variations 0 and 1.
  std::ifstream dat(s.prefix + ".forward.out_noise.dat");
  std::string header, first, second;
  std::getline(dat, header);
  std::getline(dat, first);
  std::getline(dat, second);
  CHECK(header == "# drift_compensation = null, 0 s: forward.out_noise accuracy_mean accuracy_std");
  CHECK(first == "0 " + nlohmann::json(out["results"][0]["accuracy_mean"][0]).dump() + " 0");
  CHECK(second == "0.1 " + nlohmann::json(out["results"][1]["accuracy_mean"][0]).dump() + " 0");
  if (run_command("command -v gnuplot", "/dev/null").code == 0) {
    s.remove_outputs();
    const Run p = run("sweep " + s.exp + " --plot --json");
    REQUIRE(p.code == 0);
    CHECK(last_json_line(p.out)["plots"].size() == 2);
    CHECK(fs::file_size(s.prefix + ".forward.out_noise.png") > 0);
    CHECK(fs::file_size(s.prefix + ".drift_compensation.png") > 0);
  }
}

TEST_CASE("sweep on an analog checkpoint: its own config without rpu_config, or rebuilt on each variation") {
  SweepSetup s;
  const std::string analog = (s.dir / "a.safetensors").string();
  REQUIRE(run("train --dataset mnist:" + s.data + " --model mlp --epochs 1 --batch-size 32 --limit-train 256 "
              "--limit-test 64 --seed 3 --rpu-config InferenceRPUConfig --out " + analog).code == 0);
  const std::string drift = "drift --dataset mnist:" + s.data + " --checkpoint " + analog +
                            " --times 0,86400 --repeats 2 --limit-test 64 --seed 5 --json";
  nlohmann::json j = SweepSetup::experiment();
  j["checkpoints"] = {"a.safetensors"};
  j.erase("rpu_config");
  j.erase("vary");
  s.write(j);
  REQUIRE(run("sweep " + s.exp).code == 0);
  nlohmann::json out = nlohmann::json::parse(slurp(s.prefix + ".json"));
  REQUIRE(out["results"].size() == 1);
  Run d = run(drift);
  REQUIRE(d.code == 0);
  CHECK(out["results"][0]["accuracy"] == last_json_line(d.out)["accuracy"]);
  CHECK(out["fields"] == nlohmann::json::array());

  s.remove_outputs();
  j = SweepSetup::experiment();
  j["checkpoints"] = {"a.safetensors"};
  s.write(j);
  REQUIRE(run("sweep " + s.exp).code == 0);
  out = nlohmann::json::parse(slurp(s.prefix + ".json"));
  const std::string config = (s.dir / "cfg.json").string();
  std::ofstream(config) << nlohmann::json{{"family", "InferenceRPUConfig"}, {"forward", {{"out_noise", 0.1}}}};
  d = run(drift + " --rpu-config " + config);
  REQUIRE(d.code == 0);
  CHECK(out["results"][1]["accuracy"] == last_json_line(d.out)["accuracy"]);
}
TEST_CASE("train --shards: shards that do not divide the batch and pulsed training refused with one line") {
  const fs::path data = tmp / "shards_data";
  write_varied_split(data, "train", 64);
  write_varied_split(data, "t10k", 16);
  const std::string common = "train --dataset mnist:" + data.string() + " --epochs 1 --limit-test 16";
  expect_usage_error(common + " --model mlp --batch-size 32 --shards 3",
                     {"config error", "--shards", "3 must divide the batch size (--batch-size 32)"});
  expect_usage_error(common + " --model mlp_sigmoid --rpu-config SingleRPUConfig --optimizer sgd --batch-size 32 --shards 2",
                     {"--shards", "pulsed analog training", "--shards 1 on one process"});
  expect_usage_error(common + " --model mlp --shards 0", {"--shards", "0"});
}

#if !AIMC_HAVE_MPI
// Only a build without MPI can pretend to be under mpirun: with MPI, the
// announced size would start MPI (mpi_train covers the real thing).
TEST_CASE("a build without MPI started as one of several processes refuses, instead of running the job twice") {
  fs::create_directories(tmp);
  const std::string err = (tmp / "nompi.err").string();
  const Run r = run_command("OMPI_COMM_WORLD_SIZE=2 timeout 60 " + std::string(AIMC_CLI_PATH) +
                                " train --model mlp --epochs 1 --batch-size 32 --shards 2", err);
  CHECK(r.code == 2);
  const std::string msg = slurp(err);
  INFO(msg);
  CHECK(msg.find("aimc: usage error: started as one of 2 processes (mpirun)") != std::string::npos);
  CHECK(msg.find("built without MPI") != std::string::npos);
}
#endif
