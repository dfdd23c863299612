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
// parallel_for at grain 1 over the pending points). dispatch_over_ranks is
// the multi-process one (mpirun): a manager/worker loop in which rank 0
// hands out point indices one at a time and alone calls record, and every
// rank, rank 0 included, runs one point at a time with its threads inside
// the point. `aimc drift` uses the same seam for its (model, repeat) jobs.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/communicator.h"

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

// The points over comm's ranks; every rank calls the returned dispatcher
// alike (the workers' `pending` and `record` are not used: rank 0's are).
// Messages (only the main thread of each rank talks to MPI, FUNNELED): a
// worker says it is free, rank 0 answers with a point index or "stop"; the
// worker sends back the index and the result line, or that it abandoned the
// point. Rank 0's main thread polls for them (try_recv, a 1 ms sleep when
// none is there) while a second thread of rank 0 runs points of its own; it
// calls record on the main thread, in the order the points finish. Once
// stop_requested() holds on rank 0, or a rank abandons a point, no further
// point is handed out; the points in flight are still recorded. An
// exception (a failing point) ends only after rank 0's own point in flight
// is done; the caller's abort then ends every rank (aimc's main). With one
// rank it is run_points_locally.
DispatchPoints dispatch_over_ranks(Communicator& comm, std::function<bool()> stop_requested);

}  // namespace aimc::cli
