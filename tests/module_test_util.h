// Helpers shared by the tests of modules, graphs, the module factory,
// checkpoints and ONNX: a temporary directory per test case, and the
// message of the ConfigError a call throws.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

#include "engine/error.h"

namespace aimc::testing {

// A fresh directory under the system's temporary directory, named by the
// prefix, the process and a counter; removed with everything in it afterwards.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& prefix = "aimc_test") {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           (prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The message of the ConfigError f throws; "(no ConfigError)" when it throws none.
inline std::string config_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

}  // namespace aimc::testing
