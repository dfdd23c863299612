// tools/cli/sweep_dispatch.h: the dispatchers of `aimc sweep` and `aimc
// drift` jobs. Run alone (test sweep_dispatch: run_points_locally) and under
// `mpirun -n 2` and `-n 4` (sweep_dispatch_mpi2/4: the manager/worker loop),
// every rank running the whole suite: each pending point runs once and is
// recorded once, on rank 0 alone, with the line its runner made; a stop on
// rank 0 hands out no further point but records those in flight (at most one
// per rank); an abandoned point is not recorded.
#include <catch2/catch.hpp>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "engine/communicator.h"
#include "tools/cli/sweep_dispatch.h"

using aimc::Communicator;
using namespace aimc::cli;

namespace {

std::string line_of(std::int64_t p) { return "point " + std::to_string(p) + " squared " + std::to_string(p * p) + "\n"; }

// Points run on this rank, summed over the ranks (on every rank).
std::int64_t total_over_ranks(Communicator& w, std::int64_t mine) {
  std::int64_t total = 0;
  for (const std::string& s : w.allgather(std::to_string(mine))) total += std::stoll(s);
  return total;
}

}  // namespace

TEST_CASE("every pending point runs once and is recorded once, on rank 0, with its line") {
  Communicator& w = Communicator::world();
  std::vector<std::int64_t> pending;
  for (std::int64_t p = 0; p < 60; ++p)
    if (p % 7 != 3) pending.push_back(p);  // the points an earlier run finished are not pending
  std::atomic<std::int64_t> runs{0};
  std::map<std::int64_t, std::string> recorded;
  std::int64_t records = 0;
  const RunPoint run = [&](std::int64_t p) -> std::optional<std::string> {
    ++runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + p % 3));  // uneven points
    return line_of(p);
  };
  const RecordPoint record = [&](std::int64_t p, const std::string& line) {
    ++records;
    recorded[p] = line;
  };
  dispatch_over_ranks(w, [] { return false; })(pending, run, record);
  CHECK(total_over_ranks(w, runs) == static_cast<std::int64_t>(pending.size()));
  if (w.is_root()) {
    CHECK(records == static_cast<std::int64_t>(pending.size()));
    REQUIRE(recorded.size() == pending.size());
    for (std::int64_t p : pending) CHECK(recorded[p] == line_of(p));
  } else {
    CHECK(records == 0);  // only rank 0 records
  }
}

TEST_CASE("a stop on rank 0 hands out no further point; the points in flight are still recorded") {
  Communicator& w = Communicator::world();
  std::vector<std::int64_t> pending;
  for (std::int64_t p = 0; p < 200; ++p) pending.push_back(p);
  std::atomic<std::int64_t> runs{0}, records{0};
  const RunPoint run = [&](std::int64_t p) -> std::optional<std::string> {
    ++runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return line_of(p);
  };
  const RecordPoint record = [&](std::int64_t p, const std::string& line) {
    CHECK(line == line_of(p));
    ++records;
  };
  // Stop once 5 are recorded. Rank 0 then hands out nothing more: at most one point in flight per rank
  // (rank 0's own thread and each worker), or per thread in the one-process dispatcher.
  dispatch_over_ranks(w, [&] { return records.load() >= 5; })(pending, run, record);
  const std::int64_t ran = total_over_ranks(w, runs);
  if (w.size() > 1) {
    if (w.is_root()) {
      CHECK(records >= 5);
      CHECK(records <= 5 + w.size());
      CHECK(ran == records.load());  // every point that ran was recorded
    }
  } else {
    // run_points_locally leaves stopping to run_point (it has no stop of its own): all run.
    CHECK(records == 200);
  }
}

TEST_CASE("an abandoned point is not recorded; nothing pending: nothing runs") {
  Communicator& w = Communicator::world();
  std::vector<std::int64_t> pending;
  for (std::int64_t p = 0; p < 40; ++p) pending.push_back(p);
  std::map<std::int64_t, std::string> recorded;
  const RunPoint run = [&](std::int64_t p) -> std::optional<std::string> {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (p == 3) return std::nullopt;  // a stop reached this point
    return line_of(p);
  };
  const RecordPoint record = [&](std::int64_t p, const std::string& line) { recorded[p] = line; };
  dispatch_over_ranks(w, [] { return false; })(pending, run, record);
  if (w.is_root()) {
    CHECK(recorded.count(3) == 0);
    CHECK(recorded.size() >= 1);
    CHECK(recorded.size() <= 39);
    for (const auto& entry : recorded) CHECK(entry.second == line_of(entry.first));
  }
  w.barrier();

  std::atomic<int> calls{0};
  dispatch_over_ranks(w, [] { return false; })(
      {}, [&](std::int64_t) -> std::optional<std::string> { ++calls; return std::string("x\n"); },
      [&](std::int64_t, const std::string&) { ++calls; });
  CHECK(calls == 0);
}
