// Shared by the fuzz targets: the input as a file (the readers take paths)
// and the one rule they check: untrusted bytes may only ever end in an
// aimc::Error (IoError, ConfigError, ...). Anything else (another exception,
// a crash, a sanitizer report, a hang) is a finding.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "engine/error.h"

namespace aimc::fuzz {

// Writes the input to a per-process scratch file (suffix e.g. ".gz") and
// returns its path.
inline std::string input_file(const std::uint8_t* data, std::size_t size, const std::string& suffix = "") {
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir && *dir ? dir : "/tmp") + "/aimc_fuzz_" + std::to_string(::getpid()) + suffix;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the harness itself failed, not the reader
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// Runs f, accepting the errors aimc throws on bad input.
template <class F>
void expect_aimc_errors_only(F&& f) {
  try {
    f();
  } catch (const aimc::Error&) {
  }
}

}  // namespace aimc::fuzz
