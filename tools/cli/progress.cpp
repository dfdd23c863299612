// Terminal progress bar (see progress.h).
#include "tools/cli/progress.h"

#include <unistd.h>

#include <cstdio>

#include "engine/communicator.h"

namespace aimc::cli {

// mpirun hands its ranks pseudo-terminals whatever its own output is, so
// under MPI a terminal says nothing about the user's: treat it as none.
bool stdout_is_terminal() { return !Communicator::world().uses_mpi() && isatty(STDOUT_FILENO) == 1; }
bool stderr_is_terminal() { return !Communicator::world().uses_mpi() && isatty(STDERR_FILENO) == 1; }

ProgressBar::ProgressBar(bool enabled) : enabled_(enabled), last_(std::chrono::steady_clock::now()) {}

void ProgressBar::update(const std::string& label, std::int64_t done, std::int64_t total, double loss,
                         double items_per_second) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  drawn_ = true;
  constexpr int width = 30;
  const double frac = total > 0 ? double(done) / double(total) : 1.0;
  const int filled = static_cast<int>(frac * width);
  std::string bar(width, ' ');
  for (int i = 0; i < filled; ++i) bar[i] = '=';
  if (filled < width) bar[filled] = '>';
  std::fprintf(stderr, "\r%s [%s] %3d%% loss %.4f %.0f/s  ", label.c_str(), bar.c_str(), int(frac * 100), loss,
               items_per_second);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r%80s\r", "");
    std::fflush(stderr);
  }
  drawn_ = false;
}

}  // namespace aimc::cli
