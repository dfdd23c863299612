// Communicator: the processes of one run and the messages between them.
//
// Built with MPI (meson -Dmpi, AIMC_HAVE_MPI) and started by mpirun, the
// world is MPI_COMM_WORLD: MPI starts on the first call of world()
// (MPI_Init_thread, MPI_THREAD_FUNNELED: only the thread that called it
// talks to MPI; the TBB workers never do) and ends at exit (MPI_Finalize).
// Otherwise (no MPI in the build, or a plain start without mpirun) the world
// is this one process: rank 0 of 1, every collective a local copy, and MPI is
// never touched.
//
// Messages are byte strings (std::string); every collective is called by
// every rank in the same order. Sums across ranks never use MPI_Allreduce,
// whose order of additions MPI leaves open: sum_in_shard_order gathers the
// parts and adds them in a fixed order on every rank, so the bits do not
// depend on the number of ranks.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace aimc {

class Communicator {
 public:
  // recv: from any rank, with any tag.
  static constexpr int kAnySource = -1;
  static constexpr int kAnyTag = -1;

  // The world of this run (MPI starts here on the first call when launched by mpirun).
  static Communicator& world();
  // This process alone (rank 0 of 1, never MPI), even under mpirun: the
  // one-process reference a distributed computation is checked against.
  static Communicator& self();

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool is_root() const { return rank_ == 0; }
  // Whether this run talks to other processes through MPI (launched by mpirun).
  bool uses_mpi() const { return mpi_; }
  // The processes the launcher says this job has (OpenMPI's
  // OMPI_COMM_WORLD_SIZE, PMI_SIZE), 1 without a launcher; the same as
  // size() unless this build has no MPI: then every process runs alone.
  static int launched_size();

  void barrier() const;

  // Root's `bytes` on every rank (the others' values are replaced).
  void broadcast(std::string& bytes, int root = 0) const;
  // On root: every rank's `mine`, in rank order (any sizes); on the others: empty.
  std::vector<std::string> gather(const std::string& mine, int root = 0) const;
  // Every rank's `mine`, in rank order, on every rank.
  std::vector<std::string> allgather(const std::string& mine) const;
  // Every rank's list, concatenated in rank order, on every rank (lists of any length).
  std::vector<std::string> allgather_lists(const std::vector<std::string>& mine) const;

  // Point to point (a manager/worker loop): a blocking send of `bytes` to
  // rank `dest` with tag >= 0; recv waits for one message from `source`
  // (kAnySource) with `tag` (kAnyTag) and says who sent it with which tag.
  // Messages to oneself are queued locally, so a one-process world works too.
  struct Message {
    std::string bytes;
    int source = 0;
    int tag = 0;
  };
  void send(const std::string& bytes, int dest, int tag);
  Message recv(int source = kAnySource, int tag = kAnyTag);
  // recv without waiting: the message when one is there (MPI_Iprobe), else
  // nullopt. A manager that computes too polls with it on its main thread.
  std::optional<Message> try_recv(int source = kAnySource, int tag = kAnyTag);

  // Ends the whole run with exit status `code`. Under mpirun: writes
  // `message` (when not empty) to stderr and calls MPI_Abort, which ends every
  // rank (so none waits forever in a collective). Rank r waits r·0.25 s (at
  // most 2 s) before it writes and aborts: an error that every rank meets
  // alike is then reported once, by rank 0, whose abort ends the others first
  // (OpenMPI 4.1's mpirun can also crash when many ranks abort at the same
  // moment); an error of one rank alone still ends the job within that wait.
  // In a one-process world there is no other rank to end: it throws
  // Error(message), for the caller to report and exit.
  [[noreturn]] void abort(int code, const std::string& message = "") const;

  // Data-parallel sums (tools/training/trainer.h). The S parts ("shards") of
  // a sum are spread over the ranks in consecutive blocks, rank r holding
  // shards [r·S/K, (r+1)·S/K) (shard_range). `mine` holds this rank's parts,
  // each of the same length. Returns on every rank the sum over shards
  // 0, 1, ..., S−1, added left to right in float: the same bits for any K
  // that divides S, and for one process holding all S. ValueError when the
  // parts differ in length or the ranks hold different numbers of them.
  std::vector<float> sum_in_shard_order(const std::vector<std::vector<float>>& mine) const;
  // The S parts themselves (any lengths), in shard order 0..S−1, on every
  // rank (byte strings; one process holding all S gets its own list back).
  // ValueError when the ranks hold different numbers of them.
  std::vector<std::string> gather_in_shard_order(const std::vector<std::string>& mine) const;

  // The shards [first, last) this rank holds of S; ValueError unless size() divides S.
  std::pair<std::int64_t, std::int64_t> shard_range(std::int64_t shards) const;

  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

 private:
  explicit Communicator(bool world);
  // A queued message to oneself matching (source, tag), if any; `what` names the caller in errors.
  std::optional<Message> take_from_self(const char* what, int source, int tag);
  // Receives the message an MPI probe found (its MPI_Status*; AIMC_HAVE_MPI builds only).
  Message receive_probed(void* probed_status);
  int rank_ = 0;
  int size_ = 1;
  bool mpi_ = false;
  std::deque<Message> to_self_;  // messages this rank sent itself, in order
};

}  // namespace aimc
