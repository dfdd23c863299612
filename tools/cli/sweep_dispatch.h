// How a sweep's points are handed out: the one seam between the sweep and
// where its points run.
//
// A dispatcher runs run_point(p) for every index p in `pending` (in any
// order, on any worker) and passes each result line to record(p, line), one
// call at a time, on the one process that writes the results file. A point
// that run_point abandons (nullopt: a stop was requested) is not recorded.
// The dispatcher hands points out one at a time as workers become free, so
// the slowest points do not hold the others. The results do not depend on
// the dispatcher: a point's numbers depend only on its index (its chip seed
// on the seed and its repeat), and record() fills a slot per point.
//
// run_points_locally is the single-process dispatcher (the project's
// parallel_for at grain 1 over the pending points). A multi-process one (an
// MPI manager/worker loop: rank 0 hands out indices, the workers call
// run_point and send the line back, rank 0 alone calls record) implements
// the same signature, DispatchPoints.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace aimc::cli {

// Computes point p; its result line, or nullopt when it was abandoned.
using RunPoint = std::function<std::optional<std::string>(std::int64_t p)>;
// Keeps a finished point's line (appends it to the results file, fills the
// table); called one at a time.
using RecordPoint = std::function<void(std::int64_t p, const std::string& line)>;
using DispatchPoints =
    std::function<void(const std::vector<std::int64_t>& pending, const RunPoint& run_point, const RecordPoint& record)>;

// Every pending point on this process's worker threads (--threads), one
// point per task; record runs under a mutex on the worker that finished.
void run_points_locally(const std::vector<std::int64_t>& pending, const RunPoint& run_point,
                        const RecordPoint& record);

}  // namespace aimc::cli
