// `aimc bench`: runs the benchmarks of bench/ and prints their JSON.
#include <cstdio>
#include <iostream>
#include <string>

#include "bench/benchmarks.h"
#include "tools/cli/commands.h"

namespace aimc::cli {

Runner add_bench_command(CLI::App& app) {
  std::string known;
  for (const std::string& n : bench::benchmark_names()) known += (known.empty() ? "" : ", ") + n;
  auto* cmd = app.add_subcommand("bench", "Run benchmarks (" + known + ")");
  auto common = std::make_shared<CommonOptions>();
  auto names = std::make_shared<std::vector<std::string>>();
  auto options = std::make_shared<bench::BenchOptions>();
  cmd->add_option("entries", *names,
                  "Benchmark entries to run (default: the CPU entries, or with --device cuda[:I] the *_cuda ones)");
  cmd->add_option("--dataset", options->dataset, "fashion-mnist[:DIR]")->capture_default_str();
  cmd->add_flag("--quick", options->quick, "Small sizes (smoke test only; not for recorded figures)");
  add_common_options(*cmd, *common);
  add_device_option(*cmd, *common);
  return [common, names, options] {
    apply_common_options(*common);
    options->seed = common->seed;
    options->device = parse_device(common->device);  // checked usable by apply_common_options
    const nlohmann::json result = bench::run_benchmarks(*names, *options);
    if (common->json) {
      print_json(result);
      return;
    }
    std::cout << result.dump(2) << std::endl;
  };
}

}  // namespace aimc::cli
