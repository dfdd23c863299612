// `mpirun -n K aimc train --shards S` (tools/training/trainer.h): the trained
// checkpoint is the same, byte for byte, for K = 1, 2, 4 and for a plain
// start without mpirun; a run stopped on 2 ranks resumes on 4 to the same
// bits; a rank that fails ends the whole job with exit 2 and its message.
// Built only with MPI and mpirun present (meson test `mpi_train`); the
// runner allows mpirun as root (OMPI_ALLOW_RUN_AS_ROOT, see tests/meson.build).
#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <unistd.h>

#include "tests/cli_test_util.h"

namespace fs = std::filesystem;
using namespace aimc_test;

namespace {

const fs::path tmp = fs::temp_directory_path() / ("aimc_mpi_" + std::to_string(::getpid()));

// aimc under `mpirun -n k` (k = 0: a plain start); a 120 s timeout turns a hang into a failure.
Run run_aimc(int k, const std::string& args, const std::string& err = "/dev/null") {
  const std::string launcher = k == 0 ? "" : std::string(AIMC_MPIRUN) + " --oversubscribe -n " + std::to_string(k) + " ";
  return run_command("timeout 120 " + launcher + AIMC_CLI_PATH + " " + args, err);
}

std::string dataset() {
  const fs::path data = tmp / "data";
  if (!fs::exists(data / "t10k-labels-idx1-ubyte")) {
    write_varied_split(data, "train", 128);
    write_varied_split(data, "t10k", 32);
  }
  return " --dataset mnist:" + data.string();
}

}  // namespace

TEST_CASE("train --shards 4: the same checkpoint on 1, 2 and 4 ranks and without mpirun") {
  // 128 samples in batches of 32: 4 steps per epoch, 8 in all; shards of 8 samples.
  const std::string common = dataset() + " --epochs 2 --batch-size 32 --limit-train 128 --limit-test 32 --seed 5 --json";
  const std::vector<std::pair<std::string, std::string>> runs = {
      {"digital", " --model mlp --lr 0.01"},
      {"hardware-aware", " --model mlp --rpu-config InferenceRPUConfig"},
      // Input ranges learned (and initialised from the data) and weight noise of the modifier.
      {"hardware-aware preset", " --model lenet5 --rpu-config StandardHWATrainingPreset"},
      // Pulsed tiles updated with the whole batch's x and d on every rank; digital biases by SGD.
      {"pulsed", " --model mlp_sigmoid --rpu-config SingleRPUConfig --optimizer sgd --lr 0.1 --schedule none"},
  };
  for (const auto& [name, args] : runs) {
    INFO(name << ":" << args);
    const std::string plain = (tmp / "plain.safetensors").string();
    const std::string err = (tmp / "train.err").string();
    const Run p = run_aimc(0, "train" + common + args + " --shards 4 --out " + plain, err);
    INFO(slurp(err));
    REQUIRE(p.code == 0);
    const auto jp = last_json_line(p.out);
    CHECK(jp["ranks"] == 1);
    CHECK(jp["shards"] == 4);
    for (int k : {1, 2, 4}) {
      INFO("mpirun -n " << k);
      const std::string out = (tmp / ("k" + std::to_string(k) + ".safetensors")).string();
      const Run r = run_aimc(k, "train" + common + args + " --shards 4 --out " + out, err);
      INFO(slurp(err));
      REQUIRE(r.code == 0);
      CHECK(same_tensors(plain, out));
      // Rank 0 alone prints: one result line.
      const auto j = last_json_line(r.out);
      CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
      CHECK(j["ranks"] == k);
      CHECK(j["train_loss"].get<double>() == jp["train_loss"].get<double>());
      CHECK(j["test_accuracy"].get<double>() == jp["test_accuracy"].get<double>());
    }
    // The shards shape the bits: one shard (the plain loop) trains differently.
    const std::string one = (tmp / "one.safetensors").string();
    REQUIRE(run_aimc(0, "train" + common + args + " --out " + one).code == 0);
    CHECK_FALSE(same_tensors(plain, one));
  }
}

TEST_CASE("a data-parallel run stopped on 2 ranks resumes on 4 to the uninterrupted bits") {
  // Hardware-aware, and pulsed (the devices' streams and SGD's momentum in the checkpoint).
  const std::string model = GENERATE(as<std::string>{}, " --model mlp --rpu-config InferenceRPUConfig",
                                     " --model mlp_sigmoid --rpu-config SingleRPUConfig --optimizer sgd --lr 0.1");
  INFO(model);
  const std::string common = dataset() + " --epochs 2 --batch-size 32 --limit-test 32 --seed 2 --json" + model +
                             " --shards 4";
  const std::string full = (tmp / "full.safetensors").string(), part = (tmp / "part.safetensors").string();
  const std::string err = (tmp / "resume.err").string();
  REQUIRE(run_aimc(2, "train" + common + " --out " + full).code == 0);
  fs::remove(part);
  const Run stopped = run_aimc(2, "train" + common + " --stop-after-steps 5 --out " + part, err);
  CHECK(stopped.code == 130);
  CHECK(slurp(err).find("interrupted at epoch 2 step 1/4") != std::string::npos);
  const Run rest = run_aimc(4, "train --resume " + part + " --json", err);
  INFO(slurp(err));
  REQUIRE(rest.code == 0);
  CHECK(same_tensors(full, part));
  CHECK(last_json_line(rest.out)["ranks"] == 4);
  // The shards are the run's: another value is refused.
  const Run other = run_aimc(0, "train --resume " + part + " --shards 2 --epochs 3", err);
  CHECK(other.code == 2);
  CHECK(slurp(err).find("--shards 2 differs from 4 in the checkpoint") != std::string::npos);
}

TEST_CASE("a rank that fails ends the whole job with exit 2 and its message, never a hang") {
  fs::create_directories(tmp);
  const std::string err = (tmp / "fail.err").string();
  // Rank 1 reads a dataset that is not there; rank 0 would wait for it in the first step.
  const std::string cmd = "timeout 60 " + std::string(AIMC_MPIRUN) + " --oversubscribe -n 2 sh -c '" + AIMC_CLI_PATH +
                          " train --model mlp --epochs 1 --batch-size 32 --shards 2 --json" + dataset() +
                          "$([ \"$OMPI_COMM_WORLD_RANK\" = 1 ] && echo _missing)'";
  const Run r = run_command(cmd, err);
  const std::string msg = slurp(err);
  INFO(msg);
  CHECK(r.code == 2);  // not 124: the timeout did not fire
  CHECK(msg.find("aimc: input error:") != std::string::npos);
  CHECK(msg.find("_missing") != std::string::npos);

  // Shards that the ranks cannot share: every rank refuses, exit 2.
  const Run bad = run_aimc(2, "train --model mlp --epochs 1 --batch-size 32 --shards 3" + dataset(), err);
  CHECK(bad.code == 2);
  const std::string bad_msg = slurp(err);
  INFO(bad_msg);
  CHECK(bad_msg.find("shards (--shards) 3 must be a multiple of the 2 processes") != std::string::npos);
  // Told once (by rank 0, whose abort ends rank 1 before it reports the same).
  CHECK(bad_msg.find("aimc: config error") == bad_msg.rfind("aimc: config error"));
  const Run unset = run_aimc(2, "train --model mlp --epochs 1 --batch-size 32" + dataset(), err);
  CHECK(unset.code == 2);
  CHECK(slurp(err).find("give --shards") != std::string::npos);
  // A bad flag: every rank refuses alike, rank 0 tells once.
  const Run flag = run_aimc(2, "train --batch-size 0", err);
  CHECK(flag.code == 2);
  const std::string flag_msg = slurp(err);
  INFO(flag_msg);
  CHECK(flag_msg.find("aimc: usage error: --batch-size") != std::string::npos);
  CHECK(flag_msg.find("aimc: usage error") == flag_msg.rfind("aimc: usage error"));
}
