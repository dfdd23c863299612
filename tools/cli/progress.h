// A one-line progress bar on a terminal (stderr); silent when stdout is not
// a terminal, so piped and --json output stays clean.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace aimc::cli {

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled);
  // Redraws at most ~10 times a second: "label [=====>    ] 45% loss 0.41 1234/s".
  void update(const std::string& label, std::int64_t done, std::int64_t total, double loss, double items_per_second);
  void finish();  // clears the line

 private:
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

// True when stdout is a terminal.
bool stdout_is_terminal();

}  // namespace aimc::cli
