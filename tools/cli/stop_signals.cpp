// Graceful SIGINT / SIGTERM (see stop_signals.h).
#include "tools/cli/stop_signals.h"

#include <atomic>
#include <csignal>

namespace aimc::cli {
namespace {

// Set by the handler, read by the workers of a parallel loop: a lock-free
// atomic is both async-signal-safe and free of data races.
std::atomic<int> g_stop_signal{0};
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_stop_signal(int signo) { g_stop_signal.store(signo, std::memory_order_relaxed); }

}  // namespace

struct StopSignals::Saved {
  struct sigaction int_ {}, term_ {};
};

StopSignals::StopSignals() : saved_(std::make_unique<Saved>()) {
  g_stop_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &saved_->int_);
  sigaction(SIGTERM, &sa, &saved_->term_);
}

StopSignals::~StopSignals() {
  sigaction(SIGINT, &saved_->int_, nullptr);
  sigaction(SIGTERM, &saved_->term_, nullptr);
}

int stop_signal() { return g_stop_signal.load(std::memory_order_relaxed); }

int interrupted_status(int signo) { return 128 + (signo != 0 ? signo : SIGINT); }

}  // namespace aimc::cli
