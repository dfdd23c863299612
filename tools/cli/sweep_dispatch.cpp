// The single-process dispatcher of sweep points (see sweep_dispatch.h).
#include "tools/cli/sweep_dispatch.h"

#include <mutex>

#include "kernels/cpu/parallel.h"

namespace aimc::cli {

void run_points_locally(const std::vector<std::int64_t>& pending, const RunPoint& run_point,
                        const RecordPoint& record) {
  std::mutex writer;
  // Grain 1: each point is its own task, taken by whichever worker is free.
  cpu::parallel_for(0, static_cast<std::int64_t>(pending.size()), 1, [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t k = lo; k < hi; ++k) {
      const std::optional<std::string> line = run_point(pending[k]);
      if (!line) continue;
      std::lock_guard<std::mutex> lock(writer);
      record(pending[k], *line);
    }
  });
}

}  // namespace aimc::cli
