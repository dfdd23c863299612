// The aimc command line end to end: train -> checkpoint -> eval, thread-count
// determinism of train_loss, JSON output, exit codes for bad input, inspect,
// drift (accuracy vs time on analog tiles, independent of the thread count),
// Graph and ONNX checkpoints, and the data-parallel flags. --device is in
// test_cli_device.cpp, stopping and resuming in test_cli_resume.cpp, sweep in
// test_cli_sweep.cpp.
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
#include "tests/cli_test_common.h"

namespace fs = std::filesystem;
using namespace aimc_test;

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


TEST_CASE("train --shards: shards that do not divide the batch refused with one line") {
  const fs::path data = tmp / "shards_data";
  write_varied_split(data, "train", 64);
  write_varied_split(data, "t10k", 16);
  const std::string common = "train --dataset mnist:" + data.string() + " --epochs 1 --limit-test 16";
  expect_usage_error(common + " --model mlp --batch-size 32 --shards 3",
                     {"config error", "--shards", "3 must divide the batch size (--batch-size 32)"});
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
