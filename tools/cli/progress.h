// A one-line progress bar drawn on stderr when stderr is a terminal, so piped
// output and logs stay clean.
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

// True when stdout / stderr is a terminal.
bool stdout_is_terminal();
bool stderr_is_terminal();

}  // namespace aimc::cli
