// Helpers of the command-line tests (test_cli, test_mpi_train): running a
// command, reading its JSON line, writing a small dataset, comparing checkpoints.
#pragma once

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <sys/wait.h>

#include "engine/safetensors.h"

namespace aimc_test {

struct Run {
  int code;
  std::string out;
};

// Runs a shell command; stderr goes to err_file.
inline Run run_command(const std::string& command, const std::string& err_file) {
  const std::string cmd = command + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

inline nlohmann::json last_json_line(const std::string& out) {
  std::string s = out;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const auto nl = s.rfind('\n');
  return nlohmann::json::parse(nl == std::string::npos ? s : s.substr(nl + 1));
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// An MNIST-format split of n 28x28 images whose pixels vary with the sample
// ((i·31 + k·7·(i%10+1)) mod 256), so the data order shapes the trained bits.
inline void write_varied_split(const std::filesystem::path& dir, const std::string& split, int n) {
  std::filesystem::create_directories(dir);
  auto be32 = [](std::vector<unsigned char>& b, int v) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>((v >> s) & 0xff));
  };
  std::vector<unsigned char> img = {0, 0, 8, 3}, lab = {0, 0, 8, 1};
  for (int v : {n, 28, 28}) be32(img, v);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 28 * 28; ++k) img.push_back(static_cast<unsigned char>((i * 31 + k * 7 * (i % 10 + 1)) % 256));
  be32(lab, n);
  for (int i = 0; i < n; ++i) lab.push_back(static_cast<unsigned char>(i % 10));
  std::ofstream((dir / (split + "-images-idx3-ubyte")).string(), std::ios::binary)
      .write(reinterpret_cast<const char*>(img.data()), std::streamsize(img.size()));
  std::ofstream((dir / (split + "-labels-idx1-ubyte")).string(), std::ios::binary)
      .write(reinterpret_cast<const char*>(lab.data()), std::streamsize(lab.size()));
}

// Whether two checkpoints hold the same tensors (names, dtypes, shapes and bytes).
inline bool same_tensors(const std::string& a, const std::string& b) {
  const auto fa = aimc::read_safetensors(a), fb = aimc::read_safetensors(b);
  if (fa.tensors.empty() || fa.tensors.size() != fb.tensors.size()) return false;
  for (std::size_t i = 0; i < fa.tensors.size(); ++i) {
    const auto& [na, ta] = fa.tensors[i];
    const auto& [nb, tb] = fb.tensors[i];
    if (na != nb || ta.dtype() != tb.dtype() || ta.shape() != tb.shape()) return false;
    const aimc::Tensor ca = ta.contiguous(), cb = tb.contiguous();
    if (std::memcmp(ca.raw_data(), cb.raw_data(), ca.numel() * aimc::dtype_size(ca.dtype())) != 0) return false;
  }
  return true;
}

}  // namespace aimc_test
