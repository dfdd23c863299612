// Communicator (engine/communicator.h): run as one process (test
// `communicator`) and, when built with MPI, under mpirun with 2 and 4 ranks
// (`communicator_mpi2`, `communicator_mpi4`). Every rank runs every case, so
// the collectives meet; the expected values are computed from rank and size.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "aimc_config.h"
#include "engine/communicator.h"
#include "engine/error.h"

using aimc::Communicator;

namespace {

// The ranks mpirun announced (OpenMPI), 1 for a plain start or a build without MPI.
int launched_size() {
  const char* s = std::getenv("OMPI_COMM_WORLD_SIZE");
  return s && AIMC_HAVE_MPI ? std::atoi(s) : 1;
}

// A message with a zero byte inside, so lengths (not terminators) carry it.
std::string payload(int rank, int length) {
  std::string s(std::size_t(length), char('a' + rank));
  if (length > 1) s[1] = '\0';
  return s;
}

}  // namespace

TEST_CASE("world: rank and size are those mpirun started, one process otherwise") {
  Communicator& w = Communicator::world();
  CHECK(&w == &Communicator::world());
  CHECK(w.size() == launched_size());
  const char* announced = std::getenv("OMPI_COMM_WORLD_SIZE");
  CHECK(Communicator::launched_size() == (announced ? std::atoi(announced) : 1));
  CHECK(w.rank() >= 0);
  CHECK(w.rank() < w.size());
  CHECK(w.is_root() == (w.rank() == 0));
  CHECK(w.uses_mpi() == (AIMC_HAVE_MPI && std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr));
  w.barrier();
}

TEST_CASE("abort in a one-process world throws the message instead of ending the program") {
  const Communicator& self = Communicator::self();
  try {
    self.abort(2, "rank failed: bad input");
    FAIL("abort returned");
  } catch (const aimc::Error& e) {
    CHECK(std::string(e.what()) == "rank failed: bad input");
  }
  CHECK_THROWS_AS(self.abort(2), aimc::Error);
}

TEST_CASE("broadcast: the root's bytes on every rank, from any root") {
  Communicator& w = Communicator::world();
  for (int root : {0, w.size() - 1}) {
    std::string s = w.rank() == root ? payload(root, 5 + root) : "something else";
    w.broadcast(s, root);
    CHECK(s == payload(root, 5 + root));
  }
  std::string s;
  CHECK_THROWS_AS(w.broadcast(s, w.size()), aimc::ValueError);
}

TEST_CASE("gather: every rank's bytes of its own length on the root, in rank order") {
  Communicator& w = Communicator::world();
  // Rank r sends r bytes (rank 0 an empty message).
  const auto got = w.gather(payload(w.rank(), w.rank()));
  if (w.is_root()) {
    REQUIRE(got.size() == std::size_t(w.size()));
    for (int r = 0; r < w.size(); ++r) CHECK(got[r] == payload(r, r));
  } else {
    CHECK(got.empty());
  }
  const auto all = w.allgather(payload(w.rank(), 2 * w.rank() + 1));
  REQUIRE(all.size() == std::size_t(w.size()));
  for (int r = 0; r < w.size(); ++r) CHECK(all[r] == payload(r, 2 * r + 1));
}

TEST_CASE("allgather_lists: every rank's list, concatenated in rank order") {
  Communicator& w = Communicator::world();
  // Rank r contributes r + 1 entries, entry i of length i.
  std::vector<std::string> mine;
  for (int i = 0; i <= w.rank(); ++i) mine.push_back(payload(w.rank(), i));
  const auto all = w.allgather_lists(mine);
  REQUIRE(all.size() == std::size_t(w.size() * (w.size() + 1) / 2));
  std::size_t k = 0;
  for (int r = 0; r < w.size(); ++r)
    for (int i = 0; i <= r; ++i) CHECK(all[k++] == payload(r, i));
}

TEST_CASE("send and recv: a ring and a manager collecting from every worker, tags kept") {
  Communicator& w = Communicator::world();
  const int next = (w.rank() + 1) % w.size(), prev = (w.rank() + w.size() - 1) % w.size();
  w.send(payload(w.rank(), 3), next, 10 + w.rank());
  const Communicator::Message m = w.recv(prev);
  CHECK(m.source == prev);
  CHECK(m.tag == 10 + prev);
  CHECK(m.bytes == payload(prev, 3));

  // Manager/worker: every rank (the root too) reports to the root with tag 7.
  w.send(std::to_string(w.rank()), 0, 7);
  if (w.is_root()) {
    std::set<int> sources;
    for (int i = 0; i < w.size(); ++i) {
      const auto r = w.recv(Communicator::kAnySource, 7);
      CHECK(r.bytes == std::to_string(r.source));
      sources.insert(r.source);
    }
    CHECK(sources.size() == std::size_t(w.size()));
  }
  w.barrier();
  // Nothing from itself is waiting: an error, not a wait forever.
  CHECK_THROWS_AS(w.recv(w.rank()), aimc::ValueError);
  CHECK_THROWS_AS(w.send("x", w.size(), 0), aimc::ValueError);
  CHECK_THROWS_AS(w.send("x", 0, -1), aimc::ValueError);
}

TEST_CASE("try_recv: nothing waiting is nullopt at once; a sent message arrives whole, with its source and tag") {
  Communicator& w = Communicator::world();
  w.barrier();
  CHECK_FALSE(w.try_recv().has_value());
  CHECK_THROWS_AS(w.try_recv(w.size()), aimc::ValueError);
  // A message to oneself is there at once.
  w.send("self", w.rank(), 3);
  const auto own = w.try_recv(w.rank(), 3);
  REQUIRE(own.has_value());
  CHECK(own->bytes == "self");
  CHECK(own->source == w.rank());
  // Every other rank sends the root 1000 + r bytes with tag 20 + r; the root polls until all are in.
  if (!w.is_root()) w.send(payload(w.rank(), 1000 + w.rank()), 0, 20 + w.rank());
  if (w.is_root()) {
    std::set<int> sources;
    // Polled for at most 30 s (a lost message fails the check below instead of hanging).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (sources.size() + 1 < std::size_t(w.size()) && std::chrono::steady_clock::now() < deadline) {
      const auto m = w.try_recv(Communicator::kAnySource);
      if (!m) continue;
      CHECK(m->tag == 20 + m->source);
      CHECK(m->bytes == payload(m->source, 1000 + m->source));
      sources.insert(m->source);
    }
    CHECK(sources.size() + 1 == std::size_t(w.size()));
  }
  w.barrier();
  CHECK_FALSE(w.try_recv().has_value());
}

TEST_CASE("sum_in_shard_order adds shards 0..S-1 left to right, the same bits for any number of ranks") {
  Communicator& w = Communicator::world();
  constexpr std::int64_t S = 4;
  // Element 0: shards 1e8, 1, -1e8, 1. Left to right in float, 1e8 + 1
  // rounds back to 1e8 (spacing 8 there), so the sum is 1; pairwise
  // ((1e8 + 1) + (-1e8 + 1)) would give 0 and (1e8 + -1e8) + (1 + 1) 2.
  // Elements 1..: values whose sums round, compared with a local left-to-right sum.
  auto shard = [](std::int64_t s) {
    std::vector<float> v = {s == 0 ? 1e8f : s == 2 ? -1e8f : 1.f};
    for (int i = 1; i < 64; ++i) v.push_back(float(1.0 / (3.0 + double(i * 7 + s * 13))) * (s % 2 ? -1.f : 1.f) + 0.1f * float(s));
    return v;
  };
  const auto [first, last] = w.shard_range(S);
  CHECK(last - first == S / w.size());
  CHECK(first == w.rank() * (S / w.size()));
  std::vector<std::vector<float>> mine;
  for (std::int64_t s = first; s < last; ++s) mine.push_back(shard(s));
  const std::vector<float> sum = w.sum_in_shard_order(mine);
  REQUIRE(sum.size() == 64);
  CHECK(sum[0] == 1.f);
  std::vector<float> expected = shard(0);
  for (std::int64_t s = 1; s < S; ++s) {
    const auto v = shard(s);
    for (std::size_t i = 0; i < v.size(); ++i) expected[i] += v[i];
  }
  for (std::size_t i = 0; i < sum.size(); ++i) CHECK(sum[i] == expected[i]);

  CHECK_THROWS_AS(w.shard_range(0), aimc::ValueError);
  if (w.size() > 1) CHECK_THROWS_AS(w.shard_range(w.size() + 1), aimc::ValueError);
}

TEST_CASE("gather_in_shard_order: every shard's bytes (any lengths) in shard order 0..S-1 on every rank") {
  Communicator& w = Communicator::world();
  constexpr std::int64_t S = 4;
  // Shard s: s + 1 bytes 'a' + s, shard 2 empty (an empty shard keeps its place).
  auto shard = [](std::int64_t s) { return s == 2 ? std::string() : std::string(std::size_t(s + 1), char('a' + s)); };
  const auto [first, last] = w.shard_range(S);
  std::vector<std::string> mine;
  for (std::int64_t s = first; s < last; ++s) mine.push_back(shard(s));
  const std::vector<std::string> all = w.gather_in_shard_order(mine);
  REQUIRE(all.size() == std::size_t(S));
  for (std::int64_t s = 0; s < S; ++s) CHECK(all[std::size_t(s)] == shard(s));
  // Ranks holding different numbers of shards: every rank refuses (rank 0 holds one more).
  if (w.size() > 1) {
    std::vector<std::string> uneven = mine;
    if (w.is_root()) uneven.push_back("x");
    CHECK_THROWS_WITH(w.gather_in_shard_order(uneven), Catch::Contains("different numbers of shards"));
  }
}
