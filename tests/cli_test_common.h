// What the command-line test files (test_cli, test_cli_device, test_cli_resume,
// test_cli_sweep) share: running the aimc binary (AIMC_CLI_PATH), the scratch directory,
// usage-error checks, small MNIST-format splits, and reading files back.
#pragma once

#include <algorithm>
#include <chrono>
#include <csignal>
#include <functional>
#include <spawn.h>
#include <thread>
#include <sys/wait.h>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <unistd.h>

#include "engine/safetensors.h"
#include "tests/cli_test_util.h"

namespace aimc_test {

namespace fs = std::filesystem;

// Runs the CLI with args; stderr goes to err_file.
inline Run run(const std::string& args, const std::string& err_file = "/dev/null") {
  return run_command(std::string(AIMC_CLI_PATH) + " " + args, err_file);
}

inline const fs::path tmp = fs::temp_directory_path() / ("aimc_cli_" + std::to_string(::getpid()));

// Runs the CLI, expects exit code 2 and one stderr line holding every needle.
// A 60 s timeout turns a hang (a FIFO opened for reading) into a failure.
// env: variable assignments for the command ("NAME=value ").
inline void expect_usage_error(const std::string& args, const std::vector<std::string>& needles,
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
inline void write_split(const fs::path& dir, const std::string& split, int n, std::vector<int> labels = {}) {
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
inline nlohmann::json training_state(const std::string& path) {
  return nlohmann::json::parse(aimc::read_safetensors(path).metadata.at("aimc.training"));
}

// The lines of a file (each without its newline; a last line without one too).
inline std::vector<std::string> file_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// s with the first `from` replaced by `to` (which must be there).
inline std::string replaced(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

// The table output without its last line (the run's seconds).
inline std::string without_seconds(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s.substr(0, s.rfind('\n') + 1);
}

// Starts `command` with sh (exec'ed, so a signal reaches the command itself),
// waits until ready() holds (at most 120 s), sends signo, and returns the
// command's exit status.
inline int signal_when(const std::string& command, const std::function<bool()>& ready, int signo) {
  const std::string exec_cmd = "exec " + command;
  const char* argv[] = {"sh", "-c", exec_cmd.c_str(), nullptr};
  pid_t pid = 0;
  REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!ready() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(ready());
  REQUIRE(::kill(pid, signo) == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

// The number of whole lines (each ended by a newline) of a file.
inline long whole_lines(const std::string& path) {
  const std::string t = slurp(path);
  return static_cast<long>(std::count(t.begin(), t.end(), '\n'));
}

}  // namespace aimc_test
