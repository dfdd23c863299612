// The dispatchers of sweep points (see sweep_dispatch.h).
#include "tools/cli/sweep_dispatch.h"

#include <chrono>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "engine/error.h"
#include "kernels/cpu/parallel.h"

namespace aimc::cli {
namespace {

// Message tags of the manager/worker loop.
constexpr int kTagFree = 1;       // worker -> rank 0: ready for a point (empty)
constexpr int kTagPoint = 2;      // rank 0 -> worker: run this point (its index, decimal)
constexpr int kTagStop = 3;       // rank 0 -> worker: no more points (empty)
constexpr int kTagDone = 4;       // worker -> rank 0: "INDEX\nLINE"
constexpr int kTagAbandoned = 5;  // worker -> rank 0: "INDEX" (a stop reached it)

std::int64_t parse_index(const std::string& text, int source) {
  std::size_t used = 0;
  long long p = -1;
  try {
    p = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || p < 0) throw ValueError("sweep dispatch: rank " + std::to_string(source) + " sent a bad point index");
  return p;
}

// A worker rank: asks for points until told to stop.
void work(Communicator& comm, const RunPoint& run_point) {
  comm.send("", 0, kTagFree);
  for (;;) {
    const Communicator::Message m = comm.recv(0);
    if (m.tag == kTagStop) return;
    const std::int64_t p = parse_index(m.bytes, 0);
    const std::optional<std::string> line = run_point(p);
    if (line)
      comm.send(std::to_string(p) + "\n" + *line, 0, kTagDone);
    else
      comm.send(std::to_string(p), 0, kTagAbandoned);
  }
}

// Rank 0: hands out the points, runs its own on a second thread, records them all.
void manage(Communicator& comm, const std::vector<std::int64_t>& pending, const RunPoint& run_point,
            const RecordPoint& record, const std::function<bool()>& stop_requested) {
  std::mutex mu;  // guards next, stopping, own_done, own_running, own_error
  std::size_t next = 0;
  bool stopping = false;
  std::deque<std::pair<std::int64_t, std::optional<std::string>>> own_done;
  bool own_running = true;
  std::exception_ptr own_error;
  // The next point to hand out, nullopt once stopping or all are out; called under mu.
  auto take = [&]() -> std::optional<std::int64_t> {
    if (stop_requested()) stopping = true;
    if (stopping || next >= pending.size()) return std::nullopt;
    return pending[next++];
  };
  // Rank 0's own points (no MPI on this thread).
  std::thread own([&] {
    try {
      for (;;) {
        std::optional<std::int64_t> p;
        {
          std::lock_guard<std::mutex> lock(mu);
          p = take();
        }
        if (!p) break;
        std::optional<std::string> line = run_point(*p);
        std::lock_guard<std::mutex> lock(mu);
        if (!line) stopping = true;
        own_done.emplace_back(*p, std::move(line));
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      own_error = std::current_exception();
      stopping = true;
    }
    std::lock_guard<std::mutex> lock(mu);
    own_running = false;
  });
  try {
    int workers = comm.size() - 1;  // not yet told to stop
    for (;;) {
      decltype(own_done) finished;
      bool running = false;
      std::exception_ptr error;
      {
        std::lock_guard<std::mutex> lock(mu);
        finished.swap(own_done);
        running = own_running;
        error = own_error;
      }
      if (error) std::rethrow_exception(error);
      for (const auto& [p, line] : finished)
        if (line) record(p, *line);
      if (!running && workers == 0) break;  // own_done was emptied after the thread's last push
      std::optional<Communicator::Message> m = comm.try_recv();
      if (!m) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      if (m->tag == kTagDone) {
        const std::size_t nl = m->bytes.find('\n');
        if (nl == std::string::npos)
          throw ValueError("sweep dispatch: rank " + std::to_string(m->source) + " sent a result without its point");
        record(parse_index(m->bytes.substr(0, nl), m->source), m->bytes.substr(nl + 1));
      } else if (m->tag == kTagAbandoned) {
        std::lock_guard<std::mutex> lock(mu);
        stopping = true;
      } else if (m->tag != kTagFree) {
        throw ValueError("sweep dispatch: rank " + std::to_string(m->source) + " sent an unknown message (tag " +
                         std::to_string(m->tag) + ")");
      }
      // The sender is free: its next point, or stop.
      std::optional<std::int64_t> p;
      {
        std::lock_guard<std::mutex> lock(mu);
        p = take();
      }
      if (p) {
        comm.send(std::to_string(*p), m->source, kTagPoint);
      } else {
        comm.send("", m->source, kTagStop);
        --workers;
      }
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mu);
      stopping = true;
    }
    own.join();  // after its point in flight
    throw;
  }
  own.join();
}

}  // namespace

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

DispatchPoints dispatch_over_ranks(Communicator& comm, std::function<bool()> stop_requested) {
  if (comm.size() == 1) return run_points_locally;
  return [&comm, stop_requested](const std::vector<std::int64_t>& pending, const RunPoint& run_point,
                                 const RecordPoint& record) {
    if (comm.is_root())
      manage(comm, pending, run_point, record, stop_requested);
    else
      work(comm, run_point);
  };
}

}  // namespace aimc::cli
