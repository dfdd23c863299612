// SIGINT and SIGTERM as a request to stop a long command gracefully: while a
// StopSignals lives, the signals only record themselves, and the command's
// loop polls stop_signal() at points where it can save its work and stop.
#pragma once

#include <memory>

namespace aimc::cli {

// Installs the handlers (and clears any earlier request); the previous
// handlers come back when it is destroyed.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

// The signal that asked to stop (0: none). Safe to call from any thread.
int stop_signal();

// Exit status of an interrupted run: 128 + the signal, as shells report a
// process killed by it (130 SIGINT, 143 SIGTERM); 0 (a testing aid's stop)
// counts as SIGINT.
int interrupted_status(int signo);

}  // namespace aimc::cli
