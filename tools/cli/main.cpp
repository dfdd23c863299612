// aimc: the command line. `aimc --help` lists the subcommands.
//
// Exit codes: 0 success; 2 bad usage, configuration or input file, or a
// device (--device) that cannot be used; 1 an
// internal failure; 130 / 143 train, drift or sweep interrupted by SIGINT /
// SIGTERM (128 + the signal, as shells report it) after saving what it can
// resume from. Errors go to stderr; with --json the last stdout line is one JSON
// object with the results.
//
// Under mpirun (engine/communicator.h) every rank runs the command; rank 0
// alone prints to stdout, and an error on any rank ends the whole job
// (MPI_Abort) with the exit status above and the rank's message, so no rank
// waits forever for one that failed.
#include <cstdio>
#include <iostream>
#include <map>

#include "engine/communicator.h"
#include "engine/error.h"
#include "engine/runtime.h"
#include "kernels/cuda/backend.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_checks.h"

namespace aimc::cli {

namespace {
constexpr int kMaxThreads = 1024;
}  // namespace

void add_common_options(CLI::App& cmd, CommonOptions& common) {
  cmd.add_option("--seed", common.seed, "Random seed (same seed, same bits)")
      ->check(integer_range<std::uint64_t>(0, UINT64_MAX))
      ->capture_default_str();
  cmd.add_option("--threads", common.threads,
                 "Worker threads (0: all cores); results do not depend on it")
      ->check(integer_range(0, kMaxThreads))
      ->capture_default_str();
  cmd.add_flag("--json", common.json, "Print the results as one JSON object on the last stdout line");
}

void add_device_option(CLI::App& cmd, CommonOptions& common) {
  cmd.add_option("--device", common.device,
                 "cpu, cuda or cuda:I: where the model runs (a GPU needs libaimc_cuda.so and a usable GPU)")
      ->capture_default_str();
}

Device parse_device(const std::string& text) {
  if (text == "cpu") return Device::cpu();
  if (text == "cuda") return Device::cuda(0);
  const std::string prefix = "cuda:";
  if (text.rfind(prefix, 0) == 0 && text.size() > prefix.size() && text.size() <= prefix.size() + 4 &&
      text.find_first_not_of("0123456789", prefix.size()) == std::string::npos)
    return Device::cuda(std::stoi(text.substr(prefix.size())));
  throw UsageError("--device '" + text + "': expected cpu, cuda or cuda:I (I a GPU index, 0 to 9999)");
}

void apply_common_options(const CommonOptions& common) {
  set_num_threads(common.threads);
  const Device device = parse_device(common.device);
  if (!device.is_cuda()) return;
  if (!cuda::gpu_available()) {
    // backend() says why: no CUDA in this build, the library did not load, or no GPU.
    std::string why = "the CUDA backend reports no usable GPU";
    try {
      (void)cuda::backend();
    } catch (const DeviceError& e) {
      why = e.what();
    }
    throw DeviceError("--device " + common.device + ": no GPU found (" + why + "); use --device cpu");
  }
  const int count = cuda::backend().device_count();
  if (device.index >= count)
    throw DeviceError("--device " + common.device + ": GPU index out of range (" + std::to_string(count) +
                      " GPU(s) found)");
}

void print_json(const nlohmann::json& result) {
  std::cout << result.dump() << std::endl;
}

}  // namespace aimc::cli

int main(int argc, char** argv) {
  using namespace aimc::cli;
  // MPI starts here when mpirun launched this process; the other ranks' stdout goes nowhere.
  aimc::Communicator& world = aimc::Communicator::world();
  if (!world.is_root() && std::freopen("/dev/null", "w", stdout) == nullptr) return 1;
  // A failure ends every rank of a multi-process job, not this one alone.
  auto fail = [&world](int code, const std::string& message) {
    if (world.size() > 1) world.abort(code, message);
    std::cerr << message << "\n";
    return code;
  };
  CLI::App app{"aimc: analog in-memory-computing simulator"};
  app.require_subcommand(1);
  app.set_version_flag("--version", aimc::version());
  // One line per parse error (the flag and what is wrong), as for the errors below.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("aimc: usage error: ") + e.what() + " (see --help)\n";
  });
  std::map<CLI::App*, Runner> runners;
  {
    Runner r = add_train_command(app);
    runners[app.get_subcommand("train")] = r;
    r = add_eval_command(app);
    runners[app.get_subcommand("eval")] = r;
    r = add_drift_command(app);
    runners[app.get_subcommand("drift")] = r;
    r = add_sweep_command(app);
    runners[app.get_subcommand("sweep")] = r;
    r = add_bench_command(app);
    runners[app.get_subcommand("bench")] = r;
    r = add_inspect_command(app);
    runners[app.get_subcommand("inspect")] = r;
    r = add_import_command(app);
    runners[app.get_subcommand("import")] = r;
    r = add_export_command(app);
    runners[app.get_subcommand("export")] = r;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (!world.is_root()) return e.get_exit_code() == 0 ? 0 : 2;  // every rank parses alike: rank 0 tells
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    if (world.size() == 1 && aimc::Communicator::launched_size() > 1)
      throw aimc::UsageError("started as one of " + std::to_string(aimc::Communicator::launched_size()) +
                             " processes (mpirun), but this aimc was built without MPI, so each would run the whole "
                             "job alone: install OpenMPI (libopenmpi-dev) and build again (meson -Dmpi=auto), or run "
                             "it without mpirun");
    for (auto* sub : app.get_subcommands()) runners.at(sub)();
    return 0;
  } catch (const Interrupted& e) {
    return e.status;
  } catch (const aimc::UsageError& e) {
    return fail(2, std::string("aimc: usage error: ") + e.what());
  } catch (const aimc::ConfigError& e) {
    return fail(2, std::string("aimc: config error: ") + e.what());
  } catch (const aimc::IoError& e) {
    return fail(2, std::string("aimc: input error: ") + e.what());
  } catch (const aimc::ShapeError& e) {
    return fail(2, std::string("aimc: shape error: ") + e.what());
  } catch (const aimc::ValueError& e) {
    return fail(2, std::string("aimc: value error: ") + e.what());
  } catch (const aimc::DeviceError& e) {
    return fail(2, std::string("aimc: device error: ") + e.what());
  } catch (const std::exception& e) {
    return fail(1, std::string("aimc: internal error: ") + e.what());
  }
}
