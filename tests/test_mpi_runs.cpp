// `mpirun -n K aimc drift` and `mpirun -n K aimc sweep` (tools/cli/sweep_dispatch.h):
// the outputs are the same bytes for K = 1, 2, 4 and a plain start; a drift
// stopped on 2 ranks resumes on 4; a sweep whose worker rank is killed with
// SIGKILL ends (mpirun tears the job down) and the rerun finishes the
// uninterrupted run's tables with every point once; a rank that fails ends
// the job with exit 2 and its message. Built only with MPI and mpirun
// present (meson tests `mpi_drift` and `mpi_sweep`, tags [drift] and [sweep]).
#include <catch2/catch.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <set>
#include <spawn.h>
#include <string>
#include <thread>
#include <vector>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/cli_test_util.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace aimc_test;

namespace {

const fs::path tmp = fs::temp_directory_path() / ("aimc_mpi_runs_" + std::to_string(::getpid()));
// Removed when the tests end.
struct RemoveTmp {
  ~RemoveTmp() {
    std::error_code ec;
    fs::remove_all(tmp, ec);
  }
} remove_tmp;

std::string mpirun(int k) { return std::string(AIMC_MPIRUN) + " --oversubscribe -n " + std::to_string(k) + " "; }

// aimc under `mpirun -n k` (k = 0: a plain start); a 120 s timeout turns a hang into a failure.
Run run_aimc(int k, const std::string& args, const std::string& err = "/dev/null") {
  return run_command("timeout 120 " + (k == 0 ? std::string() : mpirun(k)) + AIMC_CLI_PATH + " " + args, err);
}

// A small dataset (train 128, test 64 samples) and an MLP trained on it, once per process.
struct Setup {
  std::string data = (tmp / "data").string();
  std::string ckpt = (tmp / "m.safetensors").string();
  Setup() {
    if (fs::exists(ckpt)) return;
    write_varied_split(data, "train", 128);
    write_varied_split(data, "t10k", 64);
    REQUIRE(run_aimc(0, "train --dataset mnist:" + data + " --model mlp --epochs 1 --batch-size 32 --limit-train 128 "
                        "--limit-test 64 --seed 3 --out " + ckpt).code == 0);
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    out.push_back(text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

// A JSON result without the fields that may differ between equal runs.
nlohmann::json without_run_fields(nlohmann::json j) {
  j.erase("ranks");
  j.erase("seconds");
  return j;
}

}  // namespace

TEST_CASE("drift over 1, 2 and 4 ranks: the plain run's CSV and JSON, rank 0 alone prints", "[drift]") {
  Setup s;
  // Two models (one file, two labels) x 6 repeats: 12 jobs, more than the ranks.
  const std::string common = "drift --checkpoint " + s.ckpt + " " + s.ckpt + " --label a b --rpu-config "
                             "InferenceRPUConfig --times 1,86400 --repeats 6 --limit-test 64 --threads 1 --json "
                             "--dataset mnist:" + s.data;
  const std::string args = common + " --seed 4";
  const std::string plain_csv = (tmp / "plain.csv").string(), err = (tmp / "drift.err").string();
  const Run plain = run_aimc(0, args + " --csv " + plain_csv, err);
  INFO(slurp(err));
  REQUIRE(plain.code == 0);
  const nlohmann::json jp = last_json_line(plain.out);
  CHECK(jp["ranks"] == 1);
  REQUIRE(lines_of(slurp(plain_csv)).size() == 1 + 2 * 2);  // header + (2 labels x 2 times)
  for (int k : {1, 2, 4}) {
    INFO("mpirun -n " << k);
    const std::string csv = (tmp / ("k" + std::to_string(k) + ".csv")).string();
    const Run r = run_aimc(k, args + " --csv " + csv, err);
    INFO(slurp(err));
    REQUIRE(r.code == 0);
    CHECK(slurp(csv) == slurp(plain_csv));
    CHECK_FALSE(fs::exists(csv + ".partial"));
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);  // one JSON line: rank 0's
    const nlohmann::json j = last_json_line(r.out);
    CHECK(j["ranks"] == k);
    CHECK(without_run_fields(j) == without_run_fields(jp));
  }
  // Another seed gives other chips: the comparison above can fail.
  const std::string other = (tmp / "other.csv").string();
  REQUIRE(run_aimc(2, common + " --seed 5 --csv " + other).code == 0);
  CHECK(slurp(other) != slurp(plain_csv));
}

TEST_CASE("drift stopped on 2 ranks resumes on 4 to the plain run's CSV; a failing rank ends the job", "[drift]") {
  Setup s;
  const std::string args = "drift --checkpoint " + s.ckpt + " --rpu-config InferenceRPUConfig --times 1,86400"
                           " --repeats 8 --seed 6 --limit-test 64 --threads 1 --dataset mnist:" + s.data;
  const std::string full = (tmp / "full.csv").string(), part = (tmp / "part.csv").string();
  const std::string err = (tmp / "resume.err").string();
  REQUIRE(run_aimc(0, args + " --csv " + full).code == 0);
  fs::remove(part);
  fs::remove(part + ".partial");
  const Run stopped = run_aimc(2, args + " --csv " + part + " --stop-after-repeats 3", err);
  CHECK(stopped.code == 130);
  // Rank 0 records 3 repeats and hands out no more; the points in flight then (at most one per rank) are kept too.
  const auto journal = lines_of(slurp(part + ".partial"));
  CHECK(journal.size() >= 1 + 3);
  CHECK(journal.size() <= 1 + 3 + 2);
  CHECK_FALSE(fs::exists(part));
  const Run rest = run_aimc(4, args + " --csv " + part + " --resume", err);
  const std::string msg = slurp(err);
  INFO(msg);
  REQUIRE(rest.code == 0);
  CHECK(msg.find("drift: resuming " + part + ".partial: " + std::to_string(journal.size() - 1) + " of 8 repeats done") !=
        std::string::npos);
  CHECK(slurp(part) == slurp(full));

  // Rank 1 is given a checkpoint that is not there: exit 2 with its message, not a hang (timeout: 124).
  const std::string fail_err = (tmp / "fail.err").string();
  const Run failed =
      run_command("timeout 60 " + mpirun(2) + "sh -c '" + AIMC_CLI_PATH + " " + args + " --checkpoint " + s.ckpt +
                      "$([ \"$OMPI_COMM_WORLD_RANK\" = 1 ] && echo _missing)'",
                  fail_err);
  const std::string fail_msg = slurp(fail_err);
  INFO(fail_msg);
  CHECK(failed.code == 2);
  CHECK(fail_msg.find("_missing") != std::string::npos);
}

namespace {

// One checkpoint, forward.out_noise over 2 values, `repeats` repeats, at `times` on 64 test samples.
struct SweepFiles {
  fs::path dir;
  std::string exp, results, prefix;
  SweepFiles(const Setup& s, const std::string& name, int repeats, std::vector<double> times = {0, 86400})
      : dir(tmp / name) {
    fs::create_directories(dir);
    exp = (dir / "exp.json").string();
    results = (dir / "exp.results.jsonl").string();
    prefix = (dir / "out").string();
    const nlohmann::json j = {{"checkpoints", {s.ckpt}},
                              {"rpu_config", "InferenceRPUConfig"},
                              {"vary", {{"forward.out_noise", {0.0, 0.1}}}},
                              {"times", times},
                              {"repeats", repeats},
                              {"seed", 5},
                              {"dataset", "mnist:" + s.data},
                              {"limit_test", 64},
                              {"output", "out"}};
    std::ofstream(exp) << j.dump(1);
  }
  // OUTPUT.json without the experiment's path (the runs compared live in different directories).
  nlohmann::json output_json() const {
    nlohmann::json j = nlohmann::json::parse(slurp(prefix + ".json"));
    j.erase("experiment");
    return j;
  }
  // The results file's point lines (without the header), sorted: the same set whatever the order they finished in.
  std::vector<std::string> points() const {
    std::vector<std::string> l = lines_of(slurp(results));
    if (!l.empty()) l.erase(l.begin());
    std::sort(l.begin(), l.end());
    return l;
  }
};

}  // namespace

TEST_CASE("sweep over 1, 2 and 4 ranks: the plain run's tables and points", "[sweep]") {
  Setup s;
  SweepFiles plain(s, "sweep_plain", 4);  // 8 points
  const std::string err = (tmp / "sweep.err").string();
  const Run p = run_aimc(0, "sweep " + plain.exp + " --threads 1 --json", err);
  INFO(slurp(err));
  REQUIRE(p.code == 0);
  CHECK(last_json_line(p.out)["ranks"] == 1);
  REQUIRE(plain.points().size() == 8);
  for (int k : {1, 2, 4}) {
    INFO("mpirun -n " << k);
    SweepFiles f(s, "sweep_k" + std::to_string(k), 4);
    const Run r = run_aimc(k, "sweep " + f.exp + " --threads 1 --json", err);
    INFO(slurp(err));
    REQUIRE(r.code == 0);
    CHECK(slurp(f.prefix + ".csv") == slurp(plain.prefix + ".csv"));
    CHECK(f.output_json() == plain.output_json());
    CHECK(f.points() == plain.points());
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
    const nlohmann::json j = last_json_line(r.out);
    CHECK(j["ranks"] == k);
    CHECK(j["points_run"] == 8);
  }
  // Rank 1 is given an experiment file that is not there: exit 2 with its message, not a hang (timeout: 124).
  const Run failed = run_command("timeout 60 " + mpirun(2) + "sh -c '" + AIMC_CLI_PATH + " sweep " + plain.exp +
                                     "$([ \"$OMPI_COMM_WORLD_RANK\" = 1 ] && echo _missing) --threads 1'",
                                 err);
  const std::string fail_msg = slurp(err);
  INFO(fail_msg);
  CHECK(failed.code == 2);
  CHECK(fail_msg.find("_missing") != std::string::npos);
}

TEST_CASE("sweep with a worker rank killed midway: the job ends, the rerun finishes the same tables, each point once",
          "[sweep]") {
  Setup s;
  // 60 points of 4 times each (about 1 s on 2 ranks here): the job is still running when the kill comes.
  constexpr int kRepeats = 30;
  const std::vector<double> times = {0, 60, 86400, 31536000};
  SweepFiles full(s, "sweep_full", kRepeats, times);
  REQUIRE(run_aimc(0, "sweep " + full.exp + " --threads 2").code == 0);
  SweepFiles f(s, "sweep_killed", kRepeats, times);
  const std::string err = (tmp / "killed.err").string();
  // Every rank writes its pid where the test finds it.
  const std::string cmd = "exec timeout 120 " + mpirun(2) + "sh -c 'echo $$ > " + (f.dir / "pid.").string() +
                          "$OMPI_COMM_WORLD_RANK; exec " + AIMC_CLI_PATH + " sweep " + f.exp + " --threads 1' 2>" + err;
  const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
  pid_t job = 0;
  REQUIRE(posix_spawn(&job, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto whole_lines = [&] {
    const std::string t = slurp(f.results);
    return std::count(t.begin(), t.end(), '\n');
  };
  while (whole_lines() < 1 + 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::string worker = slurp((f.dir / "pid.1").string());
  REQUIRE(!worker.empty());
  REQUIRE(::kill(std::stoi(worker), SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(job, &status, 0) == job);
  INFO("stderr: " << slurp(err));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK(WEXITSTATUS(status) != 124);  // mpirun ended the job; the timeout did not
  CHECK_FALSE(fs::exists(f.prefix + ".csv"));
  const std::size_t kept = f.points().size();
  CHECK(kept >= 4);
  CHECK(kept < 2 * kRepeats);

  const Run rerun = run_aimc(2, "sweep " + f.exp + " --threads 1 --json", err);
  INFO(slurp(err));
  REQUIRE(rerun.code == 0);
  const nlohmann::json j = last_json_line(rerun.out);
  CHECK(j["points_run"] == 2 * kRepeats - static_cast<std::int64_t>(kept));
  CHECK(slurp(f.prefix + ".csv") == slurp(full.prefix + ".csv"));
  CHECK(f.output_json() == full.output_json());
  // No point lost or twice: the full run's set of lines (the rerun would refuse a duplicate, too).
  CHECK(f.points() == full.points());
}
