// The world of one run (see communicator.h).
#include "engine/communicator.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>

#include "aimc_config.h"
#include "engine/error.h"

#if AIMC_HAVE_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only; no deprecated C++ bindings
#include <mpi.h>
#endif

namespace aimc {

namespace {

#if AIMC_HAVE_MPI
// Whether a process manager started this process as one of an MPI job:
// OpenMPI's mpirun, PMIx launchers (OpenMPI 4+, Slurm), PMI-1/2 (MPICH's hydra).
bool launched_by_mpirun() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(v) != nullptr) return true;
  return false;
}

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

int checked_count(std::size_t bytes) {
  if (bytes > std::size_t(std::numeric_limits<int>::max()))
    throw ValueError("Communicator: a message of " + std::to_string(bytes) + " bytes exceeds MPI's 2 GiB count limit");
  return int(bytes);
}
#endif

void append_u64(std::string& out, std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

std::uint64_t read_u64(const std::string& in, std::size_t& at) {
  if (at + sizeof(std::uint64_t) > in.size()) throw ValueError("Communicator: a truncated list message");
  std::uint64_t v;
  std::memcpy(&v, in.data() + at, sizeof v);
  at += sizeof v;
  return v;
}

}  // namespace

Communicator::Communicator([[maybe_unused]] bool world) {
#if AIMC_HAVE_MPI
  if (!world || !launched_by_mpirun()) return;
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    std::atexit(finalize_mpi);
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  mpi_ = true;
#endif
}

Communicator& Communicator::world() {
  static Communicator world(true);
  return world;
}

int Communicator::launched_size() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* s = std::getenv(v)) {
      const int n = std::atoi(s);
      if (n > 0) return n;
    }
  return 1;
}

Communicator& Communicator::self() {
  static Communicator self(false);
  return self;
}

void Communicator::barrier() const {
#if AIMC_HAVE_MPI
  if (mpi_) MPI_Barrier(MPI_COMM_WORLD);
#endif
}

void Communicator::broadcast([[maybe_unused]] std::string& bytes, int root) const {
  if (root < 0 || root >= size_) throw ValueError("Communicator::broadcast: root " + std::to_string(root) + " out of range");
#if AIMC_HAVE_MPI
  if (!mpi_ || size_ == 1) return;
  std::uint64_t n = bytes.size();
  MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD);
  bytes.resize(n);
  MPI_Bcast(bytes.data(), checked_count(n), MPI_BYTE, root, MPI_COMM_WORLD);
#endif
}

std::vector<std::string> Communicator::gather(const std::string& mine, int root) const {
  if (root < 0 || root >= size_) throw ValueError("Communicator::gather: root " + std::to_string(root) + " out of range");
#if AIMC_HAVE_MPI
  if (mpi_ && size_ > 1) {
    const int n = checked_count(mine.size());
    std::vector<int> counts(rank_ == root ? size_ : 0), offsets(counts.size());
    MPI_Gather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, root, MPI_COMM_WORLD);
    std::string all;
    if (rank_ == root) {
      std::size_t total = 0;
      for (int r = 0; r < size_; ++r) {
        offsets[r] = checked_count(total);
        total += std::size_t(counts[r]);
      }
      all.resize(total);
      checked_count(total);
    }
    MPI_Gatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE, root, MPI_COMM_WORLD);
    std::vector<std::string> out;
    for (int r = 0; r < int(counts.size()); ++r) out.push_back(all.substr(std::size_t(offsets[r]), std::size_t(counts[r])));
    return out;
  }
#endif
  return {mine};
}

std::vector<std::string> Communicator::allgather(const std::string& mine) const {
#if AIMC_HAVE_MPI
  if (mpi_ && size_ > 1) {
    const int n = checked_count(mine.size());
    std::vector<int> counts(size_), offsets(size_);
    MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
    std::size_t total = 0;
    for (int r = 0; r < size_; ++r) {
      offsets[r] = checked_count(total);
      total += std::size_t(counts[r]);
    }
    checked_count(total);
    std::string all(total, '\0');
    MPI_Allgatherv(mine.data(), n, MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE, MPI_COMM_WORLD);
    std::vector<std::string> out;
    for (int r = 0; r < size_; ++r) out.push_back(all.substr(std::size_t(offsets[r]), std::size_t(counts[r])));
    return out;
  }
#endif
  return {mine};
}

std::vector<std::string> Communicator::allgather_lists(const std::vector<std::string>& mine) const {
  // One message per rank: the count, then each entry's length and bytes.
  std::string packed;
  append_u64(packed, mine.size());
  for (const std::string& s : mine) {
    append_u64(packed, s.size());
    packed += s;
  }
  std::vector<std::string> out;
  for (const std::string& msg : allgather(packed)) {
    std::size_t at = 0;
    const std::uint64_t count = read_u64(msg, at);
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t len = read_u64(msg, at);
      if (at + len > msg.size()) throw ValueError("Communicator: a truncated list message");
      out.push_back(msg.substr(at, len));
      at += len;
    }
  }
  return out;
}

void Communicator::send(const std::string& bytes, int dest, int tag) {
  if (dest < 0 || dest >= size_) throw ValueError("Communicator::send: rank " + std::to_string(dest) + " out of [0, " + std::to_string(size_) + ")");
  if (tag < 0) throw ValueError("Communicator::send: tag must be >= 0, got " + std::to_string(tag));
  if (dest == rank_) {
    to_self_.push_back({bytes, rank_, tag});
    return;
  }
#if AIMC_HAVE_MPI
  MPI_Send(bytes.data(), checked_count(bytes.size()), MPI_BYTE, dest, tag, MPI_COMM_WORLD);
#endif
}

std::optional<Communicator::Message> Communicator::take_from_self(const char* what, int source, int tag) {
  if (source != kAnySource && (source < 0 || source >= size_))
    throw ValueError(std::string("Communicator::") + what + ": rank " + std::to_string(source) + " out of [0, " +
                     std::to_string(size_) + ")");
  auto matches = [&](const Message& m) { return tag == kAnyTag || m.tag == tag; };
  if (source == kAnySource || source == rank_)
    for (auto it = to_self_.begin(); it != to_self_.end(); ++it)
      if (matches(*it)) {
        Message m = std::move(*it);
        to_self_.erase(it);
        return m;
      }
  return std::nullopt;
}

std::optional<Communicator::Message> Communicator::try_recv(int source, int tag) {
  if (std::optional<Message> m = take_from_self("try_recv", source, tag)) return m;
  if (source == rank_ || size_ == 1) return std::nullopt;
#if AIMC_HAVE_MPI
  int flag = 0;
  MPI_Status status;
  MPI_Iprobe(source == kAnySource ? MPI_ANY_SOURCE : source, tag == kAnyTag ? MPI_ANY_TAG : tag, MPI_COMM_WORLD, &flag,
             &status);
  if (!flag) return std::nullopt;
  return receive_probed(&status);
#else
  return std::nullopt;
#endif
}

Communicator::Message Communicator::recv(int source, int tag) {
  if (std::optional<Message> m = take_from_self("recv", source, tag)) return std::move(*m);
  if (source == rank_ || size_ == 1)
    throw ValueError("Communicator::recv: no message from this rank itself is waiting (it would wait forever)");
#if AIMC_HAVE_MPI
  MPI_Status status;
  MPI_Probe(source == kAnySource ? MPI_ANY_SOURCE : source, tag == kAnyTag ? MPI_ANY_TAG : tag, MPI_COMM_WORLD, &status);
  return receive_probed(&status);
#else
  throw ValueError("Communicator::recv: a one-process world");
#endif
}

#if AIMC_HAVE_MPI
Communicator::Message Communicator::receive_probed(void* probed) {
  const MPI_Status& status = *static_cast<MPI_Status*>(probed);
  int n = 0;
  MPI_Get_count(&status, MPI_BYTE, &n);
  Message m;
  m.bytes.resize(std::size_t(n));
  m.source = status.MPI_SOURCE;
  m.tag = status.MPI_TAG;
  MPI_Recv(m.bytes.data(), n, MPI_BYTE, m.source, m.tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return m;
}
#endif

void Communicator::abort(int code, const std::string& message) const {
#if AIMC_HAVE_MPI
  if (mpi_) {
    std::fflush(stdout);
    if (rank_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(250 * std::min(rank_, 8)));
    if (!message.empty()) std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);  // ends every rank of the job; does not return
  }
#endif
  // One process: no other rank to end, so the caller reports and exits.
  (void)code;
  throw Error(message.empty() ? "the run was aborted" : message);
}

std::pair<std::int64_t, std::int64_t> Communicator::shard_range(std::int64_t shards) const {
  if (shards < 1 || shards % size_ != 0)
    throw ValueError("Communicator: " + std::to_string(shards) + " shards cannot be split evenly over " +
                     std::to_string(size_) + " ranks (the number of shards must be a multiple of the ranks)");
  const std::int64_t per = shards / size_;
  return {rank_ * per, (rank_ + 1) * per};
}

std::vector<std::string> Communicator::gather_in_shard_order(const std::vector<std::string>& mine) const {
  // Rank r holds the consecutive shards [r·S/K, (r+1)·S/K): rank order is shard order.
  std::vector<std::string> all = allgather_lists(mine);
  if (all.size() != mine.size() * std::size_t(size_))
    throw ValueError("Communicator: the ranks hold different numbers of shards (" + std::to_string(all.size()) +
                     " in all, " + std::to_string(mine.size()) + " here)");
  return all;
}

std::vector<float> Communicator::sum_in_shard_order(const std::vector<std::vector<float>>& mine) const {
  std::vector<std::string> parts;
  for (const auto& p : mine) parts.emplace_back(reinterpret_cast<const char*>(p.data()), p.size() * sizeof(float));
  const std::vector<std::string> all = gather_in_shard_order(parts);
  if (all.empty()) return {};
  const std::size_t n = all[0].size() / sizeof(float);
  std::vector<float> sum(n);
  for (std::size_t s = 0; s < all.size(); ++s) {
    if (all[s].size() != n * sizeof(float))
      throw ValueError("Communicator::sum_in_shard_order: shard " + std::to_string(s) + " holds " +
                       std::to_string(all[s].size() / sizeof(float)) + " values, shard 0 " + std::to_string(n));
    const char* p = all[s].data();
    for (std::size_t i = 0; i < n; ++i) {
      float v;
      std::memcpy(&v, p + i * sizeof(float), sizeof v);
      sum[i] = s == 0 ? v : sum[i] + v;
    }
  }
  return sum;
}

}  // namespace aimc
