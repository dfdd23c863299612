// aimc: the command line. `aimc --help` lists the subcommands.
//
// Exit codes: 0 success; 2 bad usage, configuration or input file; 1 an
// internal failure; 130 / 143 training interrupted by SIGINT / SIGTERM
// (128 + the signal, as shells report it) after saving its checkpoint. Errors go to stderr; with --json the last stdout line is
// one JSON object with the results.
#include <cstdio>
#include <iostream>
#include <map>

#include "engine/error.h"
#include "engine/runtime.h"
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

void apply_common_options(const CommonOptions& common) { set_num_threads(common.threads); }

void print_json(const nlohmann::json& result) {
  std::cout << result.dump() << std::endl;
}

}  // namespace aimc::cli

int main(int argc, char** argv) {
  using namespace aimc::cli;
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
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  try {
    for (auto* sub : app.get_subcommands()) runners.at(sub)();
    return 0;
  } catch (const Interrupted& e) {
    return e.status;
  } catch (const aimc::UsageError& e) {
    std::cerr << "aimc: usage error: " << e.what() << "\n";
    return 2;
  } catch (const aimc::ConfigError& e) {
    std::cerr << "aimc: config error: " << e.what() << "\n";
    return 2;
  } catch (const aimc::IoError& e) {
    std::cerr << "aimc: input error: " << e.what() << "\n";
    return 2;
  } catch (const aimc::ShapeError& e) {
    std::cerr << "aimc: shape error: " << e.what() << "\n";
    return 2;
  } catch (const aimc::ValueError& e) {
    std::cerr << "aimc: value error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "aimc: internal error: " << e.what() << "\n";
    return 1;
  }
}
