// The aimc command line end to end: train -> checkpoint -> eval, thread-count
// determinism of train_loss, JSON output, and exit codes for bad input.
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <sys/wait.h>

namespace fs = std::filesystem;

namespace {

struct Run {
  int code;
  std::string out;
};

// Runs the CLI with args; stderr goes to err_file.
Run run(const std::string& args, const std::string& err_file = "/dev/null") {
  const std::string cmd = std::string(AIMC_CLI_PATH) + " " + args + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

nlohmann::json last_json_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nlohmann::json::parse(nl == std::string::npos ? s : s.substr(nl + 1));
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

const fs::path tmp = fs::temp_directory_path() / ("aimc_cli_" + std::to_string(::getpid()));

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
