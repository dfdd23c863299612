// The aimc command line stopped and resumed: interrupted and resumed training
// (the same bits as an uninterrupted run, after any step or a real signal),
// and interrupted and resumed drift (the same CSV bytes, through its journal).
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

TEST_CASE("train stopped after any step and resumed equals the uninterrupted run bit for bit") {
  const fs::path data = tmp / "resume_data";
  write_varied_split(data, "train", 256);
  write_varied_split(data, "t10k", 64);
  // 256 samples in batches of 32: 8 steps per epoch, 16 in all.
  const std::string common = " --dataset mnist:" + data.string() + " --epochs 2 --batch-size 32 --limit-train 256 "
                             "--limit-test 64 --seed 3 --json";
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"digital", " --model mlp --lr 0.01"},
      {"hardware-aware", " --model mlp --rpu-config InferenceRPUConfig"},
      {"hardware-aware preset", " --model lenet5 --rpu-config StandardHWATrainingPreset"},
      {"pulsed", " --model mlp_sigmoid --rpu-config SingleRPUConfig --optimizer sgd --lr 0.1"},
  };
  for (const auto& [name, args] : runs) {
    INFO(name << ":" << args);
    const std::string a = (tmp / "resume_a.safetensors").string(), b = (tmp / "resume_b.safetensors").string();
    const std::string err = (tmp / "resume.err").string();
    fs::remove(b);
    Run full = run("train" + common + args + " --out " + a);
    REQUIRE(full.code == 0);

    // Stop after step 5 (epoch 1), then at the end of epoch 1 (3 more), then
    // at step 4 of epoch 2 (4 more), then run to the end.
    Run r = run("train" + common + args + " --checkpoint-every 3 --stop-after-steps 5 --out " + b, err);
    CHECK(r.code == 130);
    CHECK(slurp(err) == "aimc: interrupted at epoch 1 step 5/8; checkpoint written to " + b +
                            "; resume with: aimc train --resume " + b + "\n");
    nlohmann::json st = training_state(b);
    CHECK(st["epoch"] == 0);
    CHECK(st["batch"] == 5);
    CHECK(st["global_step"] == 5);
    CHECK_FALSE(same_tensors(a, b));  // the weights after 5 steps are not the final ones
    r = run("train --resume " + b + " --stop-after-steps 3 --json --threads 1", err);  // any thread count
    CHECK(r.code == 130);
    CHECK(slurp(err).find("interrupted at epoch 1 step 8/8") != std::string::npos);
    st = training_state(b);
    CHECK(st["epoch"] == 1);
    CHECK(st["batch"] == 0);
    CHECK(st["history"].size() == 1);
    r = run("train --resume " + b + " --stop-after-steps 4 --json", err);
    CHECK(r.code == 130);
    CHECK(slurp(err).find("interrupted at epoch 2 step 4/8") != std::string::npos);
    CHECK(training_state(b)["global_step"] == 12);
    Run rest = run("train --resume " + b + " --json", err);
    REQUIRE(rest.code == 0);
    CHECK(same_tensors(a, b));
    const auto ja = last_json_line(full.out), jb = last_json_line(rest.out);
    CHECK(jb["train_loss"].get<double>() == ja["train_loss"].get<double>());
    CHECK(jb["test_accuracy"].get<double>() == ja["test_accuracy"].get<double>());
    REQUIRE(jb["history"].size() == 2);
    for (int e = 0; e < 2; ++e) {
      CHECK(jb["history"][e]["train_loss"].get<double>() == ja["history"][e]["train_loss"].get<double>());
      CHECK(jb["history"][e]["lr"].get<double>() == ja["history"][e]["lr"].get<double>());
    }
    CHECK(training_state(b)["global_step"] == 16);
  }
}

TEST_CASE("a finished run with a constant lr resumes with more epochs as the longer run") {
  const fs::path data = tmp / "resume_data";
  write_varied_split(data, "train", 256);
  write_varied_split(data, "t10k", 64);
  const std::string common = " --dataset mnist:" + data.string() + " --model mlp --batch-size 32 --limit-train 256 "
                             "--limit-test 64 --seed 4 --schedule none --lr 0.01";
  const std::string a = (tmp / "extend_a.safetensors").string(), b = (tmp / "extend_b.safetensors").string();
  REQUIRE(run("train" + common + " --epochs 2 --out " + a).code == 0);
  REQUIRE(run("train" + common + " --epochs 1 --out " + b).code == 0);
  CHECK_FALSE(same_tensors(a, b));
  REQUIRE(run("train --resume " + b + " --epochs 2").code == 0);
  CHECK(same_tensors(a, b));
  CHECK(training_state(b)["options"]["epochs"] == 2);
  // On analog tiles the finished run's final evaluation drew from the tiles'
  // streams, as the longer run's evaluation of that epoch does with --eval-each-epoch.
  const std::string analog = common + " --rpu-config InferenceRPUConfig --eval-each-epoch";
  REQUIRE(run("train" + analog + " --epochs 2 --out " + a).code == 0);
  REQUIRE(run("train" + analog + " --epochs 1 --out " + b).code == 0);
  REQUIRE(run("train --resume " + b + " --epochs 2").code == 0);
  CHECK(same_tensors(a, b));
}

TEST_CASE("a real SIGTERM or SIGINT: a checkpoint, exit 143 or 130, and the resumed run equals the full one") {
  const fs::path data = tmp / "signal_data";
  write_varied_split(data, "train", 512);
  write_varied_split(data, "t10k", 64);
  // 512 samples in batches of 4, 2 epochs: 256 steps, each writing the
  // checkpoint, so the run lasts long enough to be stopped midway.
  const std::string common = " --dataset mnist:" + data.string() + " --model mlp --epochs 2 --batch-size 4 "
                             "--limit-test 64 --seed 6 --threads 1";
  const std::string a = (tmp / "signal_a.safetensors").string(), b = (tmp / "signal_b.safetensors").string();
  const std::string out = (tmp / "signal.out").string(), err = (tmp / "signal.err").string();
  REQUIRE(run("train" + common + " --out " + a).code == 0);
  for (const int signo : {SIGTERM, SIGINT}) {
    INFO("signal " << signo);
    fs::remove(b);

    const std::string cmd = std::string(AIMC_CLI_PATH) + " train" + common + " --checkpoint-every 1 --out " + b +
                            " >" + out + " 2>" + err;
    const int code = signal_when(cmd, [&] { return fs::exists(b); }, signo);
    CHECK(code == 128 + signo);  // 143 SIGTERM, 130 SIGINT
    const std::string msg = slurp(err);
    INFO("stderr: " << msg);
    CHECK(msg.find("aimc: interrupted at epoch ") != std::string::npos);
    CHECK(msg.find("resume with: aimc train --resume " + b) != std::string::npos);
    const nlohmann::json st = training_state(b);
    CHECK(st["global_step"].get<int>() >= 1);
    CHECK(st["global_step"].get<int>() < 256);
    CHECK_FALSE(same_tensors(a, b));
    REQUIRE(run("train --resume " + b).code == 0);
    CHECK(same_tensors(a, b));
  }
}

TEST_CASE("--resume refuses a checkpoint without run state and options that differ from the saved run") {
  const fs::path data = tmp / "resume_data";
  write_varied_split(data, "train", 256);
  write_varied_split(data, "t10k", 64);
  const std::string ck = (tmp / "refuse.safetensors").string(), old = (tmp / "old_style.safetensors").string();
  REQUIRE(run("train --dataset mnist:" + data.string() + " --model mlp --epochs 2 --batch-size 32 --limit-train 256 "
              "--limit-test 64 --seed 3 --stop-after-steps 2 --out " + ck).code == 130);
  expect_usage_error("train --resume " + ck + " --seed 4", {"--seed 4", "differs from 3", ck});
  expect_usage_error("train --resume " + ck + " --batch-size 16", {"--batch-size 16", "differs from 32"});
  expect_usage_error("train --resume " + ck + " --model lenet5", {"--model \"lenet5\"", "differs from \"mlp\""});
  expect_usage_error("train --resume " + ck + " --lr 0.5", {"--lr 0.5", "differs from 0.002"});
  expect_usage_error("train --resume " + ck + " --epochs 3", {"--epochs 3", "cosine schedule"});
  expect_usage_error("train --resume " + ck + " --rpu-config InferenceRPUConfig", {"--rpu-config", "digital training"});
  expect_usage_error("train --resume " + ck + " --eval-each-epoch", {"--eval-each-epoch"});
  // The same values as saved are accepted (and stopping again writes the same place).
  CHECK(run("train --resume " + ck + " --seed 3 --batch-size 32 --stop-after-steps 1").code == 130);
  CHECK(training_state(ck)["global_step"] == 3);

  // A checkpoint as written before the run state (no "aimc.training"): eval
  // still loads it, --resume refuses it.
  auto file = aimc::read_safetensors(ck);
  file.metadata.erase("aimc.training");
  aimc::write_safetensors(old, file.tensors, file.metadata);
  expect_usage_error("train --resume " + old, {"--resume " + old, "no training state"});
  CHECK(run("eval --checkpoint " + old + " --dataset mnist:" + data.string() + " --limit-test 64").code == 0);

  // A run state out of range is an input error naming the field.
  nlohmann::json bad = nlohmann::json::parse(aimc::read_safetensors(ck).metadata.at("aimc.training"));
  bad["epoch"] = 7;
  file.metadata["aimc.training"] = bad.dump();
  aimc::write_safetensors(old, file.tensors, file.metadata);
  expect_usage_error("train --resume " + old, {"invalid checkpoint", "'epoch' 7"});
  CHECK(run("train --checkpoint-every 2 --epochs 1").code == 2);  // needs --out
}

// Drift runs keep each finished (model, repeat) in CSV.partial as it
// finishes; --resume runs only the rest and must end with the bytes of the
// uninterrupted run. Two labels of one checkpoint x 3 repeats = 6 jobs, run
// in order with --threads 1 so --stop-after-repeats K leaves exactly K.
namespace {

struct DriftResumeSetup {
  fs::path dir = tmp / "drift_resume";
  std::string ckpt = (dir / "m.safetensors").string();
  std::string other = (dir / "other.safetensors").string();  // another seed: other weights
  std::string csv = (dir / "run.csv").string();
  std::string journal = csv + ".partial";
  std::string err = (dir / "err.txt").string();
  std::string args;  // the run without --csv, --threads and --json

  DriftResumeSetup() {
    fs::create_directories(dir);
    write_varied_split(dir / "data", "train", 256);
    write_varied_split(dir / "data", "t10k", 64);
    const std::string train = "train --dataset mnist:" + (dir / "data").string() +
                              " --model mlp --epochs 1 --batch-size 32 --limit-train 256 --limit-test 64 --out ";
    REQUIRE(run(train + ckpt + " --seed 3").code == 0);
    REQUIRE(run(train + other + " --seed 4").code == 0);
    args = "drift --dataset mnist:" + (dir / "data").string() + " --checkpoint " + ckpt + " " + ckpt +
           " --label a b --rpu-config InferenceRPUConfig --times 0,3600,86400 --repeats 3 --limit-test 64 --seed 3";
  }
  ~DriftResumeSetup() { fs::remove_all(dir); }
};

}  // namespace


TEST_CASE("drift stopped after any repeat and resumed writes the uninterrupted run's CSV, JSON and table") {
  DriftResumeSetup s;
  const std::string full_csv = (s.dir / "full.csv").string();
  const Run full = run(s.args + " --threads 2 --json --csv " + full_csv);
  REQUIRE(full.code == 0);
  const Run full_table = run(s.args + " --threads 2");
  REQUIRE(full_table.code == 0);
  const std::string expected = slurp(full_csv);
  const nlohmann::json jf = last_json_line(full.out);
  REQUIRE(jf["models"].size() == 2);
  CHECK_FALSE(fs::exists(full_csv + ".partial"));  // removed once the CSV is written
  // The repeats differ (other chips), so a repeat in the wrong slot would show.
  const auto& acc = jf["models"][0]["accuracy"];
  CHECK((acc[0] != acc[1] || acc[1] != acc[2]));
  CHECK(jf["models"][1]["accuracy"] == acc);  // both labels are the same checkpoint on the same chips

  for (int k = 1; k <= 5; ++k) {
    INFO("stopped after " << k << " repeats");
    fs::remove(s.csv);
    const Run stopped = run(s.args + " --threads 1 --stop-after-repeats " + std::to_string(k) + " --csv " + s.csv,
                            s.err);
    CHECK(stopped.code == 130);
    CHECK(slurp(s.err).find("aimc: interrupted with " + std::to_string(k) + "/6 repeats finished; they are kept in " +
                            s.journal + "; resume with: the same aimc drift command plus --resume\n") !=
          std::string::npos);
    CHECK_FALSE(fs::exists(s.csv));
    const auto lines = file_lines(s.journal);
    REQUIRE(lines.size() == std::size_t(1 + k));  // the header and one line per finished repeat
    // Job order is model-major: the last kept line is model (k-1)/3, repeat (k-1)%3.
    const nlohmann::json last = nlohmann::json::parse(lines.back());
    CHECK(last["model"] == (k - 1) / 3);
    CHECK(last["repeat"] == (k - 1) % 3);
    CHECK(last["accuracy"] == jf["models"][(k - 1) / 3]["accuracy"][(k - 1) % 3]);

    const Run resumed = run(s.args + " --threads 2 --json --resume --csv " + s.csv, s.err);
    REQUIRE(resumed.code == 0);
    CHECK(slurp(s.err) == "csv: " + s.csv + "\n");  // with --json: no note, no progress
    CHECK(slurp(s.csv) == expected);
    CHECK_FALSE(fs::exists(s.journal));
    const nlohmann::json jr = last_json_line(resumed.out);
    for (int m = 0; m < 2; ++m)
      for (const char* key : {"accuracy", "accuracy_mean", "accuracy_std"}) CHECK(jr["models"][m][key] == jf["models"][m][key]);
  }

  // Stopped twice, the second time with the table output: the table is the
  // uninterrupted run's too.
  fs::remove(s.csv);
  CHECK(run(s.args + " --threads 1 --stop-after-repeats 2 --csv " + s.csv).code == 130);
  CHECK(run(s.args + " --threads 1 --stop-after-repeats 2 --resume --csv " + s.csv).code == 130);
  CHECK(file_lines(s.journal).size() == 5);
  const Run table = run(s.args + " --resume --csv " + s.csv, s.err);
  REQUIRE(table.code == 0);
  CHECK(slurp(s.err).find("drift: resuming " + s.journal + ": 4 of 6 repeats done\n") != std::string::npos);
  CHECK(without_seconds(table.out) == without_seconds(full_table.out) + "csv: " + s.csv + "\n");
  CHECK(slurp(s.csv) == expected);
}

TEST_CASE("drift --resume drops a journal's cut-off last line and refuses any other damage, naming the line") {
  DriftResumeSetup s;
  const std::string full_csv = (s.dir / "full.csv").string();
  REQUIRE(run(s.args + " --csv " + full_csv).code == 0);
  const std::string expected = slurp(full_csv);

  // A kill while the fourth repeat's line was written: three whole lines and half of one.
  REQUIRE(run(s.args + " --threads 1 --stop-after-repeats 4 --csv " + s.csv).code == 130);
  std::string text = slurp(s.journal);
  const std::size_t last_start = text.rfind('\n', text.size() - 2) + 1;
  const std::string cut = text.substr(0, last_start + (text.size() - last_start) / 2);
  std::ofstream(s.journal, std::ios::binary) << cut;
  const Run resumed = run(s.args + " --json --resume --csv " + s.csv, s.err);
  REQUIRE(resumed.code == 0);
  CHECK(slurp(s.err) == "aimc: note: dropped the unfinished last line of " + s.journal +
                            " (the run was stopped while writing it); that repeat runs again\ncsv: " + s.csv + "\n");
  CHECK(slurp(s.csv) == expected);
  fs::remove(s.csv);

  // A damaged line with its newline is not a cut-off write: exit 2 naming the line.
  REQUIRE(run(s.args + " --threads 1 --stop-after-repeats 3 --csv " + s.csv).code == 130);
  const auto lines = file_lines(s.journal);
  REQUIRE(lines.size() == 4);
  auto write_lines = [&](std::vector<std::string> l) {
    std::ofstream out(s.journal, std::ios::binary);
    for (const auto& line : l) out << line << "\n";
  };
  auto with_line = [&](std::size_t i, const std::string& text) {
    auto l = lines;
    l[i] = text;
    return l;
  };
  write_lines(with_line(2, lines[2].substr(0, lines[2].size() / 2)));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"drift journal " + s.journal + " line 3: not JSON"});
  write_lines(with_line(2, lines[1]));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 3: model 0 repeat 0 is already on line 2"});
  nlohmann::json bad = nlohmann::json::parse(lines[3]);
  bad["accuracy"][1] = 1.5;
  write_lines(with_line(3, bad.dump()));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 4: every 'accuracy' must be a number in [0, 1]"});
  bad = nlohmann::json::parse(lines[3]);
  bad["repeat"] = 3;
  write_lines(with_line(3, bad.dump()));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 4: 'repeat' must be an integer in [0, 2], got 3"});
  bad = nlohmann::json::parse(lines[3]);
  bad["accuracy"].erase(0);
  write_lines(with_line(3, bad.dump()));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 4: 'accuracy' must be an array of 3 numbers"});
  write_lines(with_line(0, "{\"kind\": \"something else\"}"));
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 1: not an aimc drift journal header"});
  std::ofstream(s.journal, std::ios::binary) << "";
  expect_usage_error(s.args + " --resume --csv " + s.csv, {"line 1: no header"});
  // The refused runs wrote nothing.
  CHECK_FALSE(fs::exists(s.csv));
}

TEST_CASE("drift --resume refuses a journal of another run, naming what differs; --resume needs --csv") {
  DriftResumeSetup s;
  expect_usage_error(s.args + " --resume", {"--resume needs --csv"});

  REQUIRE(run(s.args + " --threads 1 --stop-after-repeats 2 --csv " + s.csv).code == 130);
  const std::string journal = slurp(s.journal);
  const std::string csv = " --csv " + s.csv + " --resume";
  // Without --resume the journal is not overwritten.
  expect_usage_error(s.args + " --csv " + s.csv, {"--csv " + s.csv, "the journal " + s.journal, "--resume"});
  // Each option that shapes the numbers or the CSV, changed.
  auto changed = [&](const std::string& from, const std::string& to) { return replaced(s.args, from, to); };
  const std::string other_run = "the journal " + s.journal + " belongs to another run: ";
  expect_usage_error(changed("--seed 3", "--seed 4") + csv, {other_run, "--seed 4 differs from 3 in the journal"});
  expect_usage_error(changed("--times 0,3600,86400", "--times 0,3600") + csv,
                     {other_run, "--times 0,3600 differs from 0,3600,86400 in the journal"});
  expect_usage_error(changed("--repeats 3", "--repeats 2") + csv, {other_run, "--repeats 2 differs from 3"});
  expect_usage_error(changed("--rpu-config InferenceRPUConfig", "--rpu-config StandardHWATrainingPreset") + csv,
                     {other_run, "--rpu-config"});
  expect_usage_error(changed("--limit-test 64", "--limit-test 32") + csv,
                     {other_run, "the test set (32 samples", "check --dataset and --limit-test"});
  expect_usage_error(changed("--label a b", "--label a c") + csv,
                     {other_run, "the label \"c\" of checkpoint 2 differs from \"b\""});
  expect_usage_error(changed(" " + s.ckpt + " --label a b", " --label a") + csv,
                     {other_run, "1 --checkpoint differ from the journal's 2"});
  expect_usage_error(changed(s.ckpt + " " + s.ckpt, s.ckpt + " " + s.other) + csv,
                     {other_run, "checkpoint 2 " + s.other + " is not the file the journal's run used"});
  // The same file rewritten with other weights is another checkpoint too.
  const std::string saved = (s.dir / "saved.safetensors").string();
  fs::copy_file(s.ckpt, saved);
  fs::copy_file(s.other, s.ckpt, fs::copy_options::overwrite_existing);
  expect_usage_error(s.args + csv, {other_run, "checkpoint 1 " + s.ckpt + " is not the file", "content hash"});
  fs::copy_file(saved, s.ckpt, fs::copy_options::overwrite_existing);
  // Refused runs leave the journal as it was; the right options continue it.
  CHECK(slurp(s.journal) == journal);
  // Neither the thread count nor where the checkpoint lies is part of the run.
  const std::string moved = (s.dir / "moved.safetensors").string();
  fs::rename(s.ckpt, moved);
  CHECK(run(replaced(s.args, s.ckpt + " " + s.ckpt, moved + " " + moved) + csv + " --threads 3").code == 0);
  fs::rename(moved, s.ckpt);
  CHECK_FALSE(fs::exists(s.journal));

  // --resume without a journal runs everything, with a note.
  fs::remove(s.csv);
  const Run fresh = run(s.args + " --json" + csv, s.err);
  CHECK(fresh.code == 0);
  CHECK(slurp(s.err) == "aimc: note: --resume: no journal " + s.journal +
                            " (no interrupted run to continue); running all repeats\ncsv: " + s.csv + "\n");
  CHECK(fs::exists(s.csv));
}

TEST_CASE("a real SIGTERM during drift: the journal kept, exit 143, and the resumed CSV equals the full run's") {
  DriftResumeSetup s;
  // 2 x 10 repeats on one thread (about 0.1 s each): long enough to be stopped midway.
  const std::string args = replaced(s.args, "--repeats 3", "--repeats 10") + " --threads 1";
  const std::string full_csv = (s.dir / "full.csv").string();
  REQUIRE(run(args + " --csv " + full_csv).code == 0);

  // Stop it once the journal holds a finished repeat (the header and one line).
  const std::string cmd = std::string(AIMC_CLI_PATH) + " " + args + " --csv " + s.csv + " 2>" + s.err;
  const int code = signal_when(cmd, [&] { return whole_lines(s.journal) >= 2; }, SIGTERM);
  CHECK(code == 143);
  const std::string msg = slurp(s.err);
  INFO("stderr: " << msg);
  CHECK(msg.find("aimc: interrupted with ") != std::string::npos);
  CHECK(msg.find("they are kept in " + s.journal + "; resume with: the same aimc drift command plus --resume") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(s.csv));
  const auto kept = static_cast<std::int64_t>(file_lines(s.journal).size()) - 1;
  CHECK(kept >= 1);
  CHECK(kept < 20);
  REQUIRE(run(args + " --resume --csv " + s.csv).code == 0);
  CHECK(slurp(s.csv) == slurp(full_csv));
}

// `aimc sweep EXPERIMENT.json`: checkpoints x RPU-config variations x times x
// repeats. One checkpoint, vary forward.out_noise over 2 values, 2 repeats,
// 2 times on 64 test samples: 4 points.
