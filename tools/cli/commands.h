// The subcommands of the `aimc` command line. Each registers its options on
// the CLI11 app and returns the function that runs it.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <nlohmann/json.hpp>

#include "engine/dtype.h"

namespace aimc::cli {

// Flags every subcommand takes.
struct CommonOptions {
  std::uint64_t seed = 0;
  int threads = 0;  // 0: all cores
  bool json = false;
  std::string device = "cpu";  // --device (train, eval, drift, bench)
};

void add_common_options(CLI::App& cmd, CommonOptions& common);
// --device cpu|cuda|cuda:I, for the commands that run a model.
void add_device_option(CLI::App& cmd, CommonOptions& common);
// Applies --threads and checks --device: UsageError for a malformed value,
// DeviceError (exit 2) when it names a GPU and none is usable.
void apply_common_options(const CommonOptions& common);
// The device --device names ("cpu", "cuda" = "cuda:0", "cuda:I"); UsageError otherwise.
Device parse_device(const std::string& text);
// Prints the result object as the last stdout line (with --json).
void print_json(const nlohmann::json& result);

// Thrown by a command that stopped on request (a signal) after saving what
// it could; main prints nothing more and exits with `status`.
struct Interrupted {
  int status;
};

// A checkpoint imported with another input shape than the datasets' images
// ([1, 28, 28]; description "input_shape", written by aimc import) cannot run
// on them: UsageError naming the checkpoint and both shapes.
void check_dataset_input(const nlohmann::json& description, const std::string& checkpoint);

using Runner = std::function<void()>;
Runner add_train_command(CLI::App& app);
Runner add_eval_command(CLI::App& app);
Runner add_drift_command(CLI::App& app);
Runner add_sweep_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_inspect_command(CLI::App& app);
Runner add_import_command(CLI::App& app);
Runner add_export_command(CLI::App& app);

}  // namespace aimc::cli
