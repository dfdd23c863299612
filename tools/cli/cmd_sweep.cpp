// `aimc sweep EXPERIMENT.json`: the drift experiment of `aimc drift` (each
// checkpoint on an RPU config, programmed once per chip, drifted through the
// times and evaluated at each) over a grid of checkpoints x RPU-config
// variations x repeats (sweep_experiment.h describes the file).
//
// A point is (checkpoint, variation, repeat); it runs on the chip
// seed_for(seed, repeat) (drift_common.h), so its numbers depend neither on
// the order of the points, nor on --threads, nor on which of them ran in an
// earlier invocation, and equal `aimc drift` with the same config and seed.
// Points are handed out one at a time (sweep_dispatch.h: the seam where a
// multi-process dispatcher plugs in); each finished point is appended to the
// results file and fsync'd (sweep_results.h), so a kill loses at most the
// points in flight, and running the same experiment again skips the points
// the file holds. SIGINT/SIGTERM abandon the points in flight, keep the file
// and exit 130/143. Once every point is done: OUTPUT.json and OUTPUT.csv
// (written atomically; the same bytes however the run was split), and with
// --plot one gnuplot PNG per varied field (sweep_report.h).
//
// Under `mpirun -n K` the points are handed out over the ranks
// (dispatch_over_ranks); rank 0 alone reads and appends the results file,
// writes the outputs and prints (its JSON reports "ranks"). A rank that is
// killed ends the job (mpirun tears it down); the points recorded so far are
// in the file, and the same experiment run again, with any K, finishes it.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>

#include "engine/communicator.h"
#include "engine/error.h"
#include "engine/runtime.h"
#include "tools/cli/commands.h"
#include "tools/cli/drift_common.h"
#include "tools/cli/durable_file.h"
#include "tools/cli/file_identity.h"
#include "tools/cli/gnuplot.h"
#include "tools/cli/option_checks.h"
#include "tools/cli/stop_signals.h"
#include "tools/cli/sweep_dispatch.h"
#include "tools/cli/sweep_experiment.h"
#include "tools/cli/sweep_report.h"
#include "tools/cli/sweep_results.h"

namespace aimc::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxThreads = 1024;  // --threads, as every subcommand's

}  // namespace

Runner add_sweep_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "sweep",
      "Drift accuracy over a grid of checkpoints x RPU-config variations x times x repeats, given by an "
      "experiment file; resumable");
  auto experiment = std::make_shared<std::string>();
  auto plot = std::make_shared<bool>(false);
  auto threads = std::make_shared<int>(0);
  auto json = std::make_shared<bool>(false);
  auto stop_after = std::make_shared<std::int64_t>(0);
  cmd->add_option("experiment", *experiment,
                  "The experiment file (JSON: checkpoints, rpu_config, vary, times, repeats, seed, dataset, "
                  "limit_test, results, output; see the README's Sweeps section)")
      ->required();
  cmd->add_flag("--plot", *plot,
                "Draw accuracy vs each varied field to OUTPUT.FIELD.png with gnuplot (OUTPUT: the experiment's "
                "\"output\"; data and script next to it)");
  cmd->add_option("--threads", *threads, "Worker threads (0: all cores); results do not depend on it")
      ->check(integer_range(0, kMaxThreads))
      ->capture_default_str();
  cmd->add_flag("--json", *json, "Print a summary as one JSON object on the last stdout line");
  cmd->add_option("--stop-after-points", *stop_after,
                  "Testing aid: act as if SIGINT arrived once N points of this invocation finished")
      ->check(integer_range<std::int64_t>(1, INT64_MAX));
  cmd->footer(
      "Every finished point is appended to the experiment's results file as it finishes; running the same "
      "experiment again skips the points the file holds. SIGINT or SIGTERM abandons the points in flight, keeps "
      "the file, and exits with status 130 (SIGINT) or 143 (SIGTERM).");

  return [=] {
    set_num_threads(*threads);
    Communicator& comm = Communicator::world();
    const bool root = comm.is_root();  // the one rank that reads and writes files and prints
    const auto start = std::chrono::steady_clock::now();
    const SweepExperiment e = read_sweep_experiment(*experiment);

    // Output paths before the work, so a typo does not cost the whole run.
    check_output_file("\"results\"", e.results);
    for (const char* ext : {".json", ".csv"}) check_output_file("\"output\"", e.output + ext);
    for (const std::string& out : {e.results, e.output + ".json", e.output + ".csv"}) {
      std::error_code ec;
      if (fs::equivalent(out, e.file, ec))
        throw UsageError("experiment " + e.file + ": \"results\" or \"output\" would overwrite the experiment "
                         "file itself (" + out + "); choose other names");
    }

    SweepGrid grid;
    grid.checkpoints = static_cast<std::int64_t>(e.checkpoints.size());
    grid.variations = e.variations();
    grid.repeats = e.repeats;
    grid.times = e.times.size();
    for (const auto& c : e.checkpoints) grid.labels.push_back(c.label);
    for (const auto& f : e.vary) grid.fields.push_back(f.path);
    for (std::int64_t v = 0; v < grid.variations; ++v) grid.values.push_back(e.values_of(v));

    const ConfigSource source{"experiment " + e.file + ": rpu_config " + e.rpu_config_name,
                              "vary only fields that keep the tile structure, or drop \"rpu_config\" to use the "
                              "checkpoint's own config"};
    const std::string digital = "the sweep needs analog tiles; give \"rpu_config\" in " + e.file +
                                " (a preset such as StandardHWATrainingPreset, a family name such as "
                                "InferenceRPUConfig, a JSON file or an inline object) to map its weights onto them";
    std::vector<SweepEntry> entries;  // entry k * variations + v
    for (std::int64_t k = 0; k < grid.checkpoints; ++k)
      for (std::int64_t v = 0; v < grid.variations; ++v) {
        const RPUConfig* config = e.rpu_config ? &e.configs[v] : nullptr;
        entries.push_back({prepare_model(e.checkpoints[k].path, e.checkpoints[k].label, config, e.rpu_config_name,
                                         source, digital, e.seed),
                           k, v});
        entries.back().model.accuracy.assign(e.repeats, std::vector<double>(e.times.size(), 0.0));
      }
    data::Dataset test = data::load_mnist_split(data::dataset_dir(e.dataset), "t10k");
    if (e.limit_test > 0) test = data::head(test, e.limit_test);

    // The experiment's identity: its numbers' inputs, by content.
    nlohmann::json identity = e.identity();
    identity["checkpoints"] = nlohmann::json::array();
    for (const auto& c : e.checkpoints) {
      std::uint64_t bytes = 0;
      const std::string hash = file_content_hash(c.path, bytes);
      identity["checkpoints"].push_back({{"label", c.label}, {"bytes", bytes}, {"hash", hash}});
    }
    identity["test_set"] = {{"samples", test.size()}, {"hash", dataset_content_hash(test)}};

    const std::int64_t n_points = grid.points();
    std::vector<char> finished(n_points, 0);
    std::string content = sweep_results_header(identity);
    std::int64_t kept = 0;
    const bool resuming = root && fs::exists(e.results);
    if (resuming) {
      int dropped = 0;
      for (const SweepPoint& p : read_sweep_results(e.results, identity, grid, dropped)) {
        entries[p.checkpoint * grid.variations + p.variation].model.accuracy[p.repeat] = p.accuracy;
        finished[p.point] = 1;
        content += sweep_result_line(grid, p);
        ++kept;
      }
      if (dropped > 0)
        std::cerr << "aimc: note: dropped the unfinished last line of " << e.results
                  << " (the run was stopped while writing it); that point runs again\n";
    }
    // The header (and the kept points, without a cut-off line), then appends.
    std::unique_ptr<DurableAppender> appender;
    if (root) {
      write_file_atomically(e.results, content);
      appender = std::make_unique<DurableAppender>(e.results);
    }

    if (!*json && root) {
      std::cerr << "sweep: " << grid.checkpoints << " checkpoint" << (grid.checkpoints == 1 ? "" : "s") << " x "
                << grid.variations << " variation" << (grid.variations == 1 ? "" : "s") << " x " << e.repeats
                << " repeat" << (e.repeats == 1 ? "" : "s") << " x " << e.times.size() << " time"
                << (e.times.size() == 1 ? "" : "s") << " on " << test.size() << " test samples: " << n_points
                << " points" << (comm.size() > 1 ? " over " + std::to_string(comm.size()) + " ranks" : "") << "\n";
      if (resuming) std::cerr << "sweep: " << kept << " of " << n_points << " points done in " << e.results << "\n";
    }

    std::vector<std::int64_t> pending;
    for (std::int64_t p = 0; p < n_points; ++p)
      if (!finished[p]) pending.push_back(p);
    std::atomic<std::int64_t> done{kept}, done_here{0};
    std::atomic<bool> stop_aid{false};  // --stop-after-points reached
    const std::function<bool()> stop_requested = [&] { return stop_signal() != 0 || stop_aid.load(); };

    const RunPoint run_point = [&](std::int64_t p) -> std::optional<std::string> {
      if (stop_requested()) return std::nullopt;
      SweepPoint point = sweep_point(grid, p);
      const SweepEntry& en = entries[point.checkpoint * grid.variations + point.variation];
      std::optional<std::vector<double>> acc = run_chip(en.model, e.seed, point.repeat, e.times, test, stop_requested);
      if (!acc) return std::nullopt;
      point.accuracy = std::move(*acc);
      return sweep_result_line(grid, point);
    };
    // The one writer: the line goes to the file, then into the table as read back.
    const RecordPoint record = [&](std::int64_t p, const std::string& line) {
      appender->append(line);
      const SweepPoint point =
          parse_sweep_result_line(grid, line.substr(0, line.size() - 1), "point " + std::to_string(p) + ": ");
      entries[point.checkpoint * grid.variations + point.variation].model.accuracy[point.repeat] = point.accuracy;
      finished[p] = 1;
      const std::int64_t total = ++done;
      if (*stop_after > 0 && ++done_here >= *stop_after) stop_aid = true;
      if (!*json) {
        std::string what = grid.labels[point.checkpoint];
        for (std::size_t f = 0; f < grid.fields.size(); ++f)
          what += " " + grid.fields[f] + "=" + value_text(grid.values[point.variation][f]);
        std::cerr << "sweep: " << what << " repeat " << point.repeat << " done (" << total << "/" << n_points << ")\n";
      }
    };
    const DispatchPoints dispatch = dispatch_over_ranks(comm, stop_requested);
    {
      StopSignals signals;
      dispatch(pending, run_point, record);
    }
    // Every rank ends as rank 0 does: 0 when all points are done, else the interruption's status.
    std::string status = std::to_string(done < n_points ? interrupted_status(stop_signal()) : 0);
    comm.broadcast(status);
    if (!root) {
      if (status != "0") throw Interrupted{std::stoi(status)};
      return;
    }
    appender->close();
    if (done < n_points) {
      std::cerr << "aimc: interrupted with " << done.load() << "/" << n_points << " points finished; they are kept in "
                << e.results << "; resume with: aimc sweep " << *experiment
                << " (it skips the finished points)\n";
      std::fflush(stdout);
      throw Interrupted{interrupted_status(stop_signal())};
    }
    for (SweepEntry& en : entries) en.model.stats = statistics(en.model.accuracy, e.times.size());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    const std::string json_path = e.output + ".json", csv_path = e.output + ".csv";
    write_file_atomically(json_path, build_json(e, entries, grid, test.size()).dump(1) + "\n");
    write_file_atomically(csv_path, build_csv(e, entries, grid));
    std::vector<std::string> info = {"results: " + e.results, "json: " + json_path, "csv: " + csv_path};
    nlohmann::json plots = nlohmann::json::array();
    if (*plot) {
      if (e.vary.empty()) std::cerr << "aimc: note: --plot: nothing is varied, so there is no field to plot\n";
      const std::string gnuplot = find_on_path("gnuplot");
      if (gnuplot.empty() && !e.vary.empty())
        std::cerr << "aimc: note: gnuplot not found; wrote the plot data and scripts to " << e.output
                  << ".FIELD.dat and .gp (render them later with gnuplot)\n";
      for (std::size_t f = 0; f < e.vary.size(); ++f) {
        try {
          const std::string line = plot_field(e, entries, grid, f, gnuplot);
          if (!line.empty()) {
            info.push_back(line);
            plots.push_back(line.substr(6));
          }
        } catch (const std::exception& err) {  // plotting never fails the command
          std::cerr << "aimc: warning: no plot of " << e.vary[f].path << ": " << err.what() << "\n";
        }
      }
    }

    if (!*json) {
      std::fputs(build_table(e, entries, grid, test.size()).c_str(), stdout);
      for (const auto& line : info) std::printf("%s\n", line.c_str());
      std::printf("(%.1f s)\n", seconds);
      std::fflush(stdout);
      return;
    }
    print_json({{"experiment", e.file},
                {"results", e.results},
                {"json", json_path},
                {"csv", csv_path},
                {"plots", plots},
                {"points", n_points},
                {"points_run", n_points - kept},
                {"ranks", comm.size()},
                {"seconds", seconds}});
  };
}

}  // namespace aimc::cli
