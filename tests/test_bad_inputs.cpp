// Every subcommand on the corpus of bad inputs in tests/bad_inputs/ (written
// by make_bad_inputs.py: truncated and corrupt checkpoints, impossible model
// descriptions, malformed and out-of-range configs, broken datasets): exit
// status 2, exactly one line on stderr naming the input, and no output file.
#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path kInputs = fs::path(AIMC_SOURCE_DIR) / "tests" / "bad_inputs";
const fs::path kTmp = fs::temp_directory_path() / ("aimc_bad_inputs_" + std::to_string(::getpid()));

std::vector<fs::path> entries(const std::string& kind) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(kInputs / kind)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// Runs `aimc args` (60 s at most), expects exit 2 and one stderr line
// containing `needle`, and that `output` (if any) was not created.
void expect_refused(const std::string& args, const std::string& needle, const fs::path& output = {}) {
  fs::create_directories(kTmp);
  const fs::path err = kTmp / "stderr";
  if (!output.empty()) fs::remove(output);
  const std::string cmd = "timeout 60 " + std::string(AIMC_CLI_PATH) + " " + args + " >/dev/null 2>" + err.string();
  const int status = std::system(cmd.c_str());
  std::ifstream in(err);
  const std::string msg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  INFO("aimc " << args << "\nstderr: " << msg);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  CHECK(std::count(msg.begin(), msg.end(), '\n') == 1);
  CHECK(msg.find(needle) != std::string::npos);
  if (!output.empty()) CHECK_FALSE(fs::exists(output));
}

}  // namespace

TEST_CASE("eval, drift and train --resume refuse every bad checkpoint, naming it, writing nothing") {
  const auto files = entries("checkpoints");
  REQUIRE(files.size() >= 10);
  for (const fs::path& f : files) {
    expect_refused("eval --checkpoint " + f.string() + " --limit-test 16", f.filename().string());
    const fs::path csv = kTmp / "drift.csv";
    expect_refused("drift --checkpoint " + f.string() + " --times 0 --repeats 1 --limit-test 16 --csv " + csv.string(),
                   f.filename().string(), csv);
    CHECK_FALSE(fs::exists(csv.string() + ".partial"));  // nor a journal of the run
    const fs::path out = kTmp / "resumed.safetensors";
    expect_refused("train --resume " + f.string() + " --out " + out.string(), f.filename().string(), out);
  }
}

TEST_CASE("train, inspect, eval and drift refuse every bad RPU config file, naming it, writing nothing") {
  const auto files = entries("configs");
  REQUIRE(files.size() >= 8);
  for (const fs::path& f : files) {
    const fs::path out = kTmp / "model.safetensors";
    expect_refused("train --model mlp --rpu-config " + f.string() + " --epochs 1 --limit-train 32 --limit-test 16 --out " +
                       out.string(),
                   f.filename().string(), out);
    expect_refused("inspect --model mlp --rpu-config " + f.string(), f.filename().string());
  }
}

TEST_CASE("train refuses every broken dataset, naming the file, writing nothing") {
  const auto dirs = entries("datasets");
  REQUIRE(dirs.size() >= 6);
  for (const fs::path& d : dirs) {
    const fs::path out = kTmp / "model.safetensors";
    expect_refused("train --model mlp --dataset mnist:" + d.string() + " --epochs 1 --batch-size 2 --out " + out.string(),
                   d.filename().string(), out);
  }
  fs::remove_all(kTmp);
}
