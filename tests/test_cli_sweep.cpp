// aimc sweep: a grid of drift experiments, equal to drift runs, independent of
// the thread count, resumable from its results file, with bad experiment files
// refused.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <chrono>
#include <csignal>
#include <cstring>
#include <spawn.h>
#include <thread>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aimc_config.h"
#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "convert/onnx_io.h"
#include "engine/generator.h"
#include "engine/safetensors.h"
#include "kernels/cuda/backend.h"
#include "layers/config/rpu_config.h"
#include "layers/modules/graph.h"
#include "layers/modules/linear.h"
#include "layers/modules/sequential.h"
#include "tests/cli_test_common.h"

namespace fs = std::filesystem;
using namespace aimc_test;

namespace {

struct SweepSetup {
  fs::path dir = tmp / "sweep";
  std::string data = (dir / "data").string();
  std::string ckpt = (dir / "m.safetensors").string();
  std::string exp = (dir / "exp.json").string();
  std::string results = (dir / "exp.results.jsonl").string();  // the default: next to the experiment
  std::string prefix = (dir / "out").string();
  std::string err = (dir / "err.txt").string();

  SweepSetup() {
    fs::create_directories(dir);
    write_varied_split(data, "train", 256);
    write_varied_split(data, "t10k", 64);
    REQUIRE(run("train --dataset mnist:" + data + " --model mlp --epochs 1 --batch-size 32 --limit-train 256 "
                "--limit-test 64 --seed 3 --out " + ckpt).code == 0);
  }
  ~SweepSetup() { fs::remove_all(dir); }

  // The experiment of the tests; paths relative to the experiment's directory.
  static nlohmann::json experiment() {
    return {{"checkpoints", {"m.safetensors"}},
            {"rpu_config", "InferenceRPUConfig"},
            {"vary", {{"forward.out_noise", {0.0, 0.1}}}},
            {"times", {0, 86400}},
            {"repeats", 2},
            {"seed", 5},
            {"dataset", "mnist:data"},
            {"limit_test", 64},
            {"output", "out"}};
  }
  void write(const nlohmann::json& j) const { std::ofstream(exp) << j.dump(1); }
  void remove_outputs() const {
    for (const std::string& f : {results, prefix + ".json", prefix + ".csv"}) fs::remove(f);
  }
};

}  // namespace

TEST_CASE("sweep: each variation's numbers equal aimc drift with that config and seed; outputs as documented") {
  SweepSetup s;
  s.write(SweepSetup::experiment());
  const Run r = run("sweep " + s.exp + " --threads 2 --json", s.err);
  REQUIRE(r.code == 0);
  const nlohmann::json summary = last_json_line(r.out);
  CHECK(summary["points"] == 4);
  CHECK(summary["points_run"] == 4);
  CHECK(summary["results"] == s.results);
  const nlohmann::json out = nlohmann::json::parse(slurp(s.prefix + ".json"));
  CHECK(out["fields"] == nlohmann::json::array({"forward.out_noise"}));
  CHECK(out["times"] == nlohmann::json::array({0.0, 86400.0}));
  REQUIRE(out["results"].size() == 2);  // checkpoint x variation

  // The known cross-check: aimc drift on a config file with the same value and seed.
  for (int v = 0; v < 2; ++v) {
    const double noise = v == 0 ? 0.0 : 0.1;
    INFO("forward.out_noise " << noise);
    const nlohmann::json& row = out["results"][v];
    CHECK(row["values"] == nlohmann::json::array({noise}));
    CHECK(row["label"] == "m");
    const std::string config = (s.dir / ("cfg" + std::to_string(v) + ".json")).string();
    std::ofstream(config) << nlohmann::json{{"family", "InferenceRPUConfig"}, {"forward", {{"out_noise", noise}}}};
    const Run d = run("drift --dataset mnist:" + s.data + " --checkpoint " + s.ckpt + " --rpu-config " + config +
                      " --times 0,86400 --repeats 2 --limit-test 64 --seed 5 --json");
    REQUIRE(d.code == 0);
    const nlohmann::json jd = last_json_line(d.out);
    CHECK(row["accuracy"] == jd["accuracy"]);  // [repeat][time], bit for bit
    CHECK(row["accuracy_mean"] == jd["accuracy_mean"]);
    CHECK(row["accuracy_std"] == jd["accuracy_std"]);
  }
  // The varied field reaches the tiles: the two configs give other accuracies.
  CHECK(out["results"][0]["accuracy"] != out["results"][1]["accuracy"]);

  // The CSV: one row per checkpoint x variation x time, the field's value as a column.
  const auto csv = file_lines(s.prefix + ".csv");
  REQUIRE(csv.size() == 5);
  CHECK(csv[0] == "label,forward.out_noise,time_s,accuracy_mean,accuracy_std,acc_r0,acc_r1");
  CHECK(csv[3].rfind("m,0.1,0,", 0) == 0);
  CHECK(csv[4].rfind("m,0.1,86400,", 0) == 0);
  // The results file: the experiment's line, then one line per point.
  const auto lines = file_lines(s.results);
  REQUIRE(lines.size() == 5);
  CHECK(nlohmann::json::parse(lines[0])["kind"] == "aimc sweep results");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const nlohmann::json p = nlohmann::json::parse(lines[i]);
    CHECK(p["accuracy"] == out["results"][p["variation"].get<int>()]["accuracy"][p["repeat"].get<int>()]);
  }

  // A rerun with every point in the file runs none and writes the same tables.
  const std::string json_bytes = slurp(s.prefix + ".json"), csv_bytes = slurp(s.prefix + ".csv");
  const Run again = run("sweep " + s.exp + " --json", s.err);
  REQUIRE(again.code == 0);
  CHECK(last_json_line(again.out)["points_run"] == 0);
  CHECK(slurp(s.prefix + ".json") == json_bytes);
  CHECK(slurp(s.prefix + ".csv") == csv_bytes);
}

TEST_CASE("sweep: the tables do not depend on the thread count; two fields make their Cartesian product") {
  SweepSetup s;
  nlohmann::json j = SweepSetup::experiment();
  j["vary"] = {{"forward.out_noise", {0.0, 0.1}}, {"noise_model.prog_noise_scale", {0.5, 1.0}}};
  s.write(j);
  REQUIRE(run("sweep " + s.exp + " --threads 1").code == 0);
  const std::string json1 = slurp(s.prefix + ".json"), csv1 = slurp(s.prefix + ".csv");
  const nlohmann::json out = nlohmann::json::parse(json1);
  REQUIRE(out["results"].size() == 4);
  // The last field varies fastest, in the order the fields are written.
  CHECK(out["results"][1]["values"] == nlohmann::json::array({0.0, 1.0}));
  CHECK(out["results"][2]["values"] == nlohmann::json::array({0.1, 0.5}));
  CHECK(file_lines(s.prefix + ".csv")[0].rfind("label,forward.out_noise,noise_model.prog_noise_scale,time_s", 0) == 0);
  for (const int threads : {2, 3}) {
    INFO("threads " << threads);
    s.remove_outputs();
    REQUIRE(run("sweep " + s.exp + " --threads " + std::to_string(threads)).code == 0);
    CHECK(slurp(s.prefix + ".json") == json1);
    CHECK(slurp(s.prefix + ".csv") == csv1);
  }
}

TEST_CASE("sweep stopped after any point and rerun writes the uninterrupted run's tables") {
  SweepSetup s;
  s.write(SweepSetup::experiment());
  REQUIRE(run("sweep " + s.exp + " --threads 2").code == 0);
  const std::string json_full = slurp(s.prefix + ".json"), csv_full = slurp(s.prefix + ".csv");
  for (int k = 1; k <= 3; ++k) {
    INFO("stopped after " << k << " points");
    s.remove_outputs();
    const Run stopped = run("sweep " + s.exp + " --threads 1 --stop-after-points " + std::to_string(k), s.err);
    CHECK(stopped.code == 130);
    CHECK(slurp(s.err).find("aimc: interrupted with " + std::to_string(k) + "/4 points finished; they are kept in " +
                            s.results + "; resume with: aimc sweep " + s.exp) != std::string::npos);
    CHECK(file_lines(s.results).size() == std::size_t(1 + k));
    CHECK_FALSE(fs::exists(s.prefix + ".json"));
    CHECK_FALSE(fs::exists(s.prefix + ".csv"));
    const Run rerun = run("sweep " + s.exp + " --threads 2", s.err);
    REQUIRE(rerun.code == 0);
    CHECK(slurp(s.err).find("sweep: " + std::to_string(k) + " of 4 points done in " + s.results) != std::string::npos);
    CHECK(slurp(s.prefix + ".json") == json_full);
    CHECK(slurp(s.prefix + ".csv") == csv_full);
  }

  // A kill while the third point's line was written: two whole lines and half of one.
  s.remove_outputs();
  REQUIRE(run("sweep " + s.exp + " --threads 1 --stop-after-points 3").code == 130);
  std::string text = slurp(s.results);
  const std::size_t last_start = text.rfind('\n', text.size() - 2) + 1;
  std::ofstream(s.results, std::ios::binary) << text.substr(0, last_start + (text.size() - last_start) / 2);
  const Run resumed = run("sweep " + s.exp + " --json", s.err);
  REQUIRE(resumed.code == 0);
  CHECK(slurp(s.err) == "aimc: note: dropped the unfinished last line of " + s.results +
                            " (the run was stopped while writing it); that point runs again\n");
  CHECK(last_json_line(resumed.out)["points_run"] == 2);
  CHECK(slurp(s.prefix + ".csv") == csv_full);

  // A damaged line with its newline is not a cut-off write: exit 2 naming the line.
  s.remove_outputs();
  REQUIRE(run("sweep " + s.exp + " --threads 1 --stop-after-points 2").code == 130);
  const auto lines = file_lines(s.results);
  auto write_lines = [&](std::vector<std::string> l) {
    std::ofstream out(s.results, std::ios::binary);
    for (const auto& line : l) out << line << "\n";
  };
  write_lines({lines[0], lines[1], lines[1]});
  expect_usage_error("sweep " + s.exp, {"results file " + s.results + " line 3: point 0 is already on line 2"});
  nlohmann::json bad = nlohmann::json::parse(lines[2]);
  bad["accuracy"][0] = 1.5;
  write_lines({lines[0], lines[1], bad.dump()});
  expect_usage_error("sweep " + s.exp, {"line 3: every 'accuracy' must be a number in [0, 1], got 1.5"});
  bad = nlohmann::json::parse(lines[2]);
  bad["repeat"] = 1 - bad["repeat"].get<int>();
  write_lines({lines[0], lines[1], bad.dump()});
  expect_usage_error("sweep " + s.exp, {"line 3: 'repeat' of point 1 must be"});
  CHECK_FALSE(fs::exists(s.prefix + ".csv"));
}

TEST_CASE("sweep refuses a results file of another experiment, naming what differs") {
  SweepSetup s;
  s.write(SweepSetup::experiment());
  REQUIRE(run("sweep " + s.exp + " --threads 1 --stop-after-points 2").code == 130);
  const std::string kept = slurp(s.results);
  const std::string other = "results file " + s.results + " belongs to another experiment: ";
  auto refused = [&](const std::string& key, const nlohmann::json& value, const std::vector<std::string>& needles) {
    nlohmann::json j = SweepSetup::experiment();
    j[key] = value;
    s.write(j);
    expect_usage_error("sweep " + s.exp, needles);
  };
  refused("seed", 6, {other, "seed is 6 here and 5 in the file"});
  refused("repeats", 3, {other, "repeats is 3 here and 2 in the file"});
  refused("times", {0, 3600}, {other, "times is [0.0,3600.0] here and [0.0,86400.0] in the file"});
  refused("vary", {{"forward.out_noise", {0.0, 0.2}}}, {other, "vary[0].values is [0.0,0.2] here"});
  refused("rpu_config", "StandardHWATrainingPreset", {other, "rpu_config."});
  refused("limit_test", 32, {other, "test_set.", "check dataset and limit_test"});
  // The same file rewritten with other weights is another checkpoint.
  const std::string saved = (s.dir / "saved.safetensors").string();
  fs::copy_file(s.ckpt, saved);
  REQUIRE(run("train --dataset mnist:" + s.data + " --model mlp --epochs 1 --batch-size 32 --limit-train 256 "
              "--limit-test 64 --seed 4 --out " + s.ckpt).code == 0);
  refused("seed", 5, {other, "checkpoints[0].", "a checkpoint file's content differs"});
  fs::copy_file(saved, s.ckpt, fs::copy_options::overwrite_existing);
  // Refused runs leave the file as it was; the experiment's own file continues.
  CHECK(slurp(s.results) == kept);
  // Outputs, the results path and the thread count are not part of the experiment.
  nlohmann::json j = SweepSetup::experiment();
  j["output"] = "elsewhere";
  j["results"] = "exp.results.jsonl";
  s.write(j);
  CHECK(run("sweep " + s.exp + " --threads 3").code == 0);
  CHECK(file_lines(s.results).size() == 5);
}

TEST_CASE("a real SIGTERM during sweep: the results file kept, exit 143, and the rerun's tables equal the full run's") {
  SweepSetup s;
  // 2 values x 10 repeats on one thread: long enough to be stopped midway.
  nlohmann::json j = SweepSetup::experiment();
  j["repeats"] = 10;
  j["results"] = "full.jsonl";
  j["output"] = "full";
  s.write(j);
  REQUIRE(run("sweep " + s.exp + " --threads 1").code == 0);
  j.erase("results");
  j["output"] = "out";
  s.write(j);

  const std::string cmd = std::string(AIMC_CLI_PATH) + " sweep " + s.exp + " --threads 1 2>" + s.err;
  const int code = signal_when(cmd, [&] { return whole_lines(s.results) >= 2; }, SIGTERM);
  CHECK(code == 143);
  const std::string msg = slurp(s.err);
  INFO("stderr: " << msg);
  CHECK(msg.find("they are kept in " + s.results + "; resume with: aimc sweep " + s.exp) != std::string::npos);
  CHECK_FALSE(fs::exists(s.prefix + ".csv"));
  const auto kept = static_cast<std::int64_t>(file_lines(s.results).size()) - 1;
  CHECK(kept >= 1);
  CHECK(kept < 20);
  REQUIRE(run("sweep " + s.exp + " --threads 2").code == 0);
  CHECK(slurp(s.prefix + ".csv") == slurp((s.dir / "full.csv").string()));
}

TEST_CASE("sweep: bad experiment files exit 2 with one line naming the field, and write nothing") {
  SweepSetup s;
  auto refused = [&](const nlohmann::json& j, const std::vector<std::string>& needles) {
    s.write(j);
    expect_usage_error("sweep " + s.exp, needles);
    CHECK_FALSE(fs::exists(s.results));
    CHECK_FALSE(fs::exists(s.prefix + ".json"));
  };
  const std::string where = "experiment " + s.exp + ": ";
  nlohmann::json j = SweepSetup::experiment();
  j["vary"] = {{"forward.out_noiz", {0.1}}};
  refused(j, {where + "vary \"forward.out_noiz\" = 0.1 gives an invalid RPU config", "unknown field \"out_noiz\""});
  j["vary"] = {{"noise_model.prog_noise_scal", {0.1}}};
  refused(j, {"InferenceRPUConfig.noise_model", "unknown field \"prog_noise_scal\""});
  j["vary"] = {{"forward.out_noise", nlohmann::json::array()}};
  refused(j, {where + "vary \"forward.out_noise\" must be a non-empty list of values"});
  j["vary"] = {{"forward.out_noise", {"high"}}};
  refused(j, {"vary \"forward.out_noise\" = \"high\"", "InferenceRPUConfig.forward.out_noise: expected a number"});
  j["vary"] = {{"forward.out_noise", {-1}}};
  refused(j, {"vary \"forward.out_noise\" = -1", "allowed >= 0"});
  j["vary"] = {{"forward.out_noise", 0.1}};
  refused(j, {"vary \"forward.out_noise\" must be a non-empty list of values, got a number 0.1"});
  j = SweepSetup::experiment();
  j["checkpoints"] = {"missing.safetensors"};
  refused(j, {where + "checkpoints[0] names " + (s.dir / "missing.safetensors").string() + ", which is missing"});
  j = SweepSetup::experiment();
  j["times"] = {0, "Infinity"};
  refused(j, {where + "times[1] must be a finite number of seconds in [0, 1e+10]"});
  j["times"] = {0, 1e11};
  refused(j, {where + "times[1] must be a finite number of seconds in [0, 1e+10], got 100000000000.0"});
  j["times"] = nlohmann::json::array();
  refused(j, {where + "times must be a non-empty list"});
  s.write(SweepSetup::experiment());
  std::string text = slurp(s.exp);
  std::ofstream(s.exp) << replaced(text, "86400", "1e999");  // beyond a double: not a finite time
  expect_usage_error("sweep " + s.exp, {"experiment " + s.exp, "1e999"});
  j = SweepSetup::experiment();
  j["repeats"] = 0;
  refused(j, {where + "repeats must be an integer in [1, 1000], got 0"});
  j = SweepSetup::experiment();
  j["repeat"] = 2;
  refused(j, {where + "\"repeat\" is not a field of an experiment"});
  j = SweepSetup::experiment();
  j.erase("rpu_config");
  refused(j, {where + "vary needs \"rpu_config\""});
  j.erase("vary");
  refused(j, {"checkpoint", "is digital: the sweep needs analog tiles; give \"rpu_config\""});
  j = SweepSetup::experiment();
  j["rpu_config"] = {{"family", "InferenceRPUConfig"}, {"forward", {{"x", 1}}}};
  refused(j, {where + "rpu_config is not a valid RPU config", "unknown field \"x\""});
  j = SweepSetup::experiment();
  j["results"] = "nowhere/r.jsonl";
  refused(j, {"\"results\"", "does not exist"});
  j = SweepSetup::experiment();
  j["output"] = "exp";  // exp.json is the experiment
  refused(j, {"would overwrite the experiment file itself"});
  expect_usage_error("sweep " + (s.dir / "absent.json").string(), {"absent.json", "no such file"});
}

TEST_CASE("sweep --plot draws one PNG per varied field, or keeps the data with a note without gnuplot") {
  SweepSetup s;
  nlohmann::json j = SweepSetup::experiment();
  j["vary"] = {{"forward.out_noise", {0.0, 0.1}},
               {"drift_compensation", {nullptr, {{"type", "GlobalDriftCompensation"}}}}};
  j["repeats"] = 1;
  s.write(j);
  // Without gnuplot on PATH: the data and scripts, a note, exit 0.
  const Run r = run_command("PATH=/nonexistent " + std::string(AIMC_CLI_PATH) + " sweep " + s.exp + " --plot --json",
                            s.err);
  REQUIRE(r.code == 0);
  CHECK(slurp(s.err).find("aimc: note: gnuplot not found") != std::string::npos);
  const nlohmann::json out = nlohmann::json::parse(slurp(s.prefix + ".json"));
  for (const std::string field : {"forward.out_noise", "drift_compensation"}) {
    INFO(field);
    CHECK(fs::exists(s.prefix + "." + field + ".gp"));
    // Per series (a value of the other field x a time): one row per value of this field.
    std::ifstream dat(s.prefix + "." + field + ".dat");
    int rows = 0;
    for (std::string line; std::getline(dat, line);)
      if (!line.empty() && line[0] != '#') ++rows;
    CHECK(rows == 2 * 2 * 2);
  }
  // The first series of out_noise: drift_compensation null at 0 s. The test
  // writes the keys sorted, so drift_compensation is the first field (the
  // slower one): variations 0 and 1.
  std::ifstream dat(s.prefix + ".forward.out_noise.dat");
  std::string header, first, second;
  std::getline(dat, header);
  std::getline(dat, first);
  std::getline(dat, second);
  CHECK(header == "# drift_compensation = null, 0 s: forward.out_noise accuracy_mean accuracy_std");
  CHECK(first == "0 " + nlohmann::json(out["results"][0]["accuracy_mean"][0]).dump() + " 0");
  CHECK(second == "0.1 " + nlohmann::json(out["results"][1]["accuracy_mean"][0]).dump() + " 0");
  if (run_command("command -v gnuplot", "/dev/null").code == 0) {
    s.remove_outputs();
    const Run p = run("sweep " + s.exp + " --plot --json");
    REQUIRE(p.code == 0);
    CHECK(last_json_line(p.out)["plots"].size() == 2);
    CHECK(fs::file_size(s.prefix + ".forward.out_noise.png") > 0);
    CHECK(fs::file_size(s.prefix + ".drift_compensation.png") > 0);
  }
}

TEST_CASE("sweep on an analog checkpoint: its own config without rpu_config, or rebuilt on each variation") {
  SweepSetup s;
  const std::string analog = (s.dir / "a.safetensors").string();
  REQUIRE(run("train --dataset mnist:" + s.data + " --model mlp --epochs 1 --batch-size 32 --limit-train 256 "
              "--limit-test 64 --seed 3 --rpu-config InferenceRPUConfig --out " + analog).code == 0);
  const std::string drift = "drift --dataset mnist:" + s.data + " --checkpoint " + analog +
                            " --times 0,86400 --repeats 2 --limit-test 64 --seed 5 --json";
  nlohmann::json j = SweepSetup::experiment();
  j["checkpoints"] = {"a.safetensors"};
  j.erase("rpu_config");
  j.erase("vary");
  s.write(j);
  REQUIRE(run("sweep " + s.exp).code == 0);
  nlohmann::json out = nlohmann::json::parse(slurp(s.prefix + ".json"));
  REQUIRE(out["results"].size() == 1);
  Run d = run(drift);
  REQUIRE(d.code == 0);
  CHECK(out["results"][0]["accuracy"] == last_json_line(d.out)["accuracy"]);
  CHECK(out["fields"] == nlohmann::json::array());

  s.remove_outputs();
  j = SweepSetup::experiment();
  j["checkpoints"] = {"a.safetensors"};
  s.write(j);
  REQUIRE(run("sweep " + s.exp).code == 0);
  out = nlohmann::json::parse(slurp(s.prefix + ".json"));
  const std::string config = (s.dir / "cfg.json").string();
  std::ofstream(config) << nlohmann::json{{"family", "InferenceRPUConfig"}, {"forward", {{"out_noise", 0.1}}}};
  d = run(drift + " --rpu-config " + config);
  REQUIRE(d.code == 0);
  CHECK(out["results"][1]["accuracy"] == last_json_line(d.out)["accuracy"]);
}
