// `aimc drift`: test accuracy of one or more checkpoints on analog tiles at
// several times after programming (REFERENCE.md section 5), over repeated
// chips, as a table, JSON, a CSV file and an optional gnuplot PNG.
//
// Times are seconds after programming. Repeat r of every model runs on the chip
// reseed_analog(seed_for(seed, r)) with seed_for(S, r) = S * 1000003 + r + 1
// (unsigned 64-bit arithmetic; drift_common.h, shared with `aimc sweep`), so
// all models of one run see the same chips (a paired comparison). Repeats
// run in parallel, each on a fresh model copy writing its own result slot:
// results depend neither on --threads nor on the order in which repeats run
// or which of them ran in an earlier invocation.
//
// Long runs: with --csv F every finished (model, repeat) is appended to the
// journal F.partial and fsync'd as it finishes (drift_journal.h), so a kill
// loses at most the repeats in flight. SIGINT/SIGTERM abandon the repeats in
// flight at their next time point, keep the journal and exit 130/143; the
// same command with --resume checks that the journal is this run's (aimc
// version, checkpoints' bytes, resolved rpu config, times, repeats, seed, the
// test set's bytes, labels), skips its repeats and runs the rest. F is
// written atomically when all repeats are done, with the same bytes as an
// uninterrupted run, and the journal is then removed.
//
// Under `mpirun -n K` the (model, repeat) jobs are handed out one at a time
// over the ranks (sweep_dispatch.h: every rank runs one repeat at a time with
// its threads inside it); rank 0 alone checks and writes the journal, the
// CSV and the plot, prints, and reports "ranks" in its JSON. A repeat's chip
// depends on the seed and its index only, so the output is the same bits for
// any K, and --resume continues a run started with another K.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include "engine/communicator.h"
#include "engine/error.h"
#include "engine/runtime.h"
#include "kernels/cpu/parallel.h"
#include "layers/config/presets.h"
#include "tools/cli/commands.h"
#include "tools/cli/drift_common.h"
#include "tools/cli/drift_journal.h"
#include "tools/cli/durable_file.h"
#include "tools/cli/file_identity.h"
#include "tools/cli/gnuplot.h"
#include "tools/cli/option_checks.h"
#include "tools/cli/stop_signals.h"
#include "tools/cli/sweep_dispatch.h"

namespace aimc::cli {
namespace {

namespace fs = std::filesystem;

const char* const kDefaultTimes = "1,3600,86400,2592000,31536000";
const char* const kDigitalMessage =
    "drift needs analog tiles; pass --rpu-config (a JSON file, a preset such as StandardHWATrainingPreset or a "
    "family name such as InferenceRPUConfig) to map its weights onto them";

// "1,3600,86400" -> seconds; at most kMaxTimes entries, each as the
// real_range validator of the other flags allows (finite, in [0, kMaxTime]).
std::vector<double> parse_times(const std::string& spec) {
  std::vector<double> times;
  std::stringstream in(spec);
  std::string item;
  CLI::Validator in_range = real_range(0, kMaxTime);
  auto bad = [&](const std::string& value, const std::string& why) {
    return UsageError("--times: '" + quote_value(value) + "' " + why +
                      "; expected comma-separated seconds after programming (e.g. " + kDefaultTimes + ")");
  };
  while (std::getline(in, item, ',')) {
    const auto b = item.find_first_not_of(" \t");
    const auto e = item.find_last_not_of(" \t");
    std::string v = b == std::string::npos ? std::string() : item.substr(b, e - b + 1);
    if (v.empty()) throw bad(item, "is empty");
    const std::string why = in_range(v);  // "must be a finite number in [0, 1e+10] (got V)"
    if (!why.empty())
      throw UsageError("--times: each entry " + why + "; expected comma-separated seconds after programming");
    if (times.size() == kMaxTimes) throw bad(spec, "has more than " + std::to_string(kMaxTimes) + " entries");
    times.push_back(std::strtod(v.c_str(), nullptr));
  }
  if (!spec.empty() && spec.back() == ',') throw bad("", "is empty (trailing comma)");
  if (times.empty()) throw bad(spec, "gives no times");
  return times;
}

std::string build_table(const DriftModel& m, const std::vector<double>& times, std::int64_t repeats,
                        std::int64_t samples) {
  std::ostringstream out;
  out << m.label << " (" << m.model << " on " << m.config_name << ", " << repeats << " repeat"
      << (repeats == 1 ? "" : "s") << ", " << samples << " test samples)\n";
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-12s %-20s %s\n", "time", "accuracy", "drop");
  out << buf;
  for (std::size_t i = 0; i < times.size(); ++i) {
    const std::string acc = [&] {
      char b[64];
      std::snprintf(b, sizeof b, "%.4f +- %.4f", m.stats.mean[i], m.stats.std[i]);
      return std::string(b);
    }();
    std::snprintf(buf, sizeof buf, "  %-12s %-20s %+.4f\n", human_time(times[i]).c_str(), acc.c_str(),
                  m.stats.mean[0] - m.stats.mean[i]);
    out << buf;
  }
  return out.str();
}

std::string build_csv(const std::vector<DriftModel>& models, const std::vector<double>& times,
                      std::int64_t repeats) {
  std::ostringstream out;
  out << "label,time_s,accuracy_mean,accuracy_std";
  for (std::int64_t r = 0; r < repeats; ++r) out << ",acc_r" << r;
  out << "\n";
  for (const auto& m : models) {
    std::string label = m.label;
    if (label.find_first_of(",\"\n") != std::string::npos) {
      std::string q = "\"";
      for (char c : label) q += c == '"' ? std::string("\"\"") : std::string(1, c);
      label = q + "\"";
    }
    for (std::size_t i = 0; i < times.size(); ++i) {
      out << label << "," << exact(times[i]) << "," << exact(m.stats.mean[i]) << "," << exact(m.stats.std[i]);
      for (std::int64_t r = 0; r < repeats; ++r) out << "," << exact(m.accuracy[r][i]);
      out << "\n";
    }
  }
  return out.str();
}

// Writes PNG.dat and PNG.gp next to the PNG and runs gnuplot when found.
// Never throws: problems are warnings. Returns the info line to print.
std::string make_plot(const std::string& png, const std::vector<DriftModel>& models, const std::vector<double>& times,
                      std::int64_t repeats, const std::string& csv) {
  const fs::path png_path(png);
  const std::string base = (png_path.parent_path() / png_path.stem()).string();
  const std::string dat = base + ".dat", script_path = base + ".gp";
  // The script names its files by absolute path, so it renders from anywhere.
  const std::string png_abs = fs::absolute(png_path).string(), dat_abs = fs::absolute(dat).string();
  bool skipped_zero = false;
  std::ostringstream data;
  for (std::size_t k = 0; k < models.size(); ++k) {
    data << "# " << models[k].label << ": time_s accuracy_mean accuracy_std\n";
    for (std::size_t i = 0; i < times.size(); ++i) {
      if (times[i] <= 0) {
        skipped_zero = true;
        continue;
      }
      data << exact(times[i]) << " " << exact(models[k].stats.mean[i]) << " " << exact(models[k].stats.std[i])
           << "\n";
    }
    data << "\n\n";
  }
  if (skipped_zero)
    std::cerr << "aimc: note: the 0 s point is left out of the plot (the time axis is logarithmic)\n";
  std::vector<double> plotted;
  for (double t : times)
    if (t > 0 && std::find(plotted.begin(), plotted.end(), t) == plotted.end()) plotted.push_back(t);
  if (plotted.empty()) {
    std::cerr << "aimc: warning: no time > 0 s to plot on a log axis; no plot written\n";
    return {};
  }
  std::ostringstream gp;
  gp << "# aimc drift: accuracy vs time after programming. Render with: gnuplot " << script_path << "\n";
  gp << gnuplot_output_preamble(png_abs);
  gp << "set title 'test accuracy after programming: mean +- std over " << repeats << " chip"
     << (repeats == 1 ? "" : "s") << "'\n";
  gp << "set logscale x\nset xlabel 'time after programming'\nset ylabel 'test accuracy'\n";
  gp << "set grid\nset key bottom left\nset style fill transparent solid 0.25 noborder\n";
  gp << "set xtics (";
  for (std::size_t i = 0; i < plotted.size(); ++i)
    gp << (i ? ", " : "") << gnuplot_quote(human_time(plotted[i])) << " " << plotted[i];
  gp << ")\n";
  const double lo = *std::min_element(plotted.begin(), plotted.end());
  const double hi = *std::max_element(plotted.begin(), plotted.end());
  gp << "set xrange [" << lo / 2 << ":" << (hi > lo ? hi * 2 : lo * 2) << "]\n";
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  gp << "plot ";
  for (std::size_t k = 0; k < models.size(); ++k) {
    const std::string c = gnuplot_quote(colors[k % 8]);
    gp << (k ? ", \\\n     " : "") << gnuplot_quote(dat_abs) << " index " << k
       << " using 1:($2-$3):($2+$3) with filledcurves lc rgb " << c << " notitle, \\\n     " << gnuplot_quote(dat_abs)
       << " index " << k << " using 1:2 with linespoints lw 2 pt 7 lc rgb " << c << " title "
       << gnuplot_quote(models[k].label);
  }
  gp << "\n";
  try {
    write_file_atomically(dat, data.str());
    write_file_atomically(script_path, gp.str());
  } catch (const Error& e) {
    std::cerr << "aimc: warning: plot data not written: " << e.what() << "\n";
    return {};
  }
  const std::string gnuplot = find_on_path("gnuplot");
  const std::string where = csv.empty() ? dat : csv + " and " + dat;
  if (gnuplot.empty()) {
    std::cerr << "aimc: note: gnuplot not found; wrote the data to " << where << " (render it later with "
              << "gnuplot " << script_path << ")\n";
    return "plot: gnuplot not found; data in " + where;
  }
  if (render_png(gnuplot, script_path, png)) return "plot: " + png;
  std::cerr << "aimc: warning: gnuplot failed to draw " << png << "; the data is in " << where
            << " (script " << script_path << ")\n";
  return {};
}

}  // namespace

Runner add_drift_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "drift", "Test accuracy on analog tiles at times after programming (conductance drift), over repeated chips");
  auto common = std::make_shared<CommonOptions>();
  auto checkpoints = std::make_shared<std::vector<std::string>>();
  auto labels = std::make_shared<std::vector<std::string>>();
  auto rpu = std::make_shared<std::string>();
  auto times_spec = std::make_shared<std::string>(kDefaultTimes);
  auto repeats = std::make_shared<std::int64_t>(3);
  auto csv = std::make_shared<std::string>();
  auto plot = std::make_shared<std::string>();
  auto dataset = std::make_shared<std::string>("fashion-mnist");
  auto limit = std::make_shared<std::int64_t>(0);
  cmd->add_option("--checkpoint", *checkpoints, "Checkpoint written by aimc train --out (repeat for several)")
      ->required()
      ->take_all();
  cmd->add_option("--label", *labels, "Name of each checkpoint in the output, in order (default: the file stem)")
      ->take_all();
  cmd->add_option("--rpu-config", *rpu,
                  "Analog tiles to use (JSON file, preset or family name); required for digital checkpoints, "
                  "replaces an analog checkpoint's own config");
  cmd->add_option("--times", *times_spec,
                  "Comma-separated seconds after programming, each in " + real_range(0, kMaxTime).get_description() +
                      ", at most " + std::to_string(kMaxTimes))
      ->capture_default_str();
  cmd->add_option("--repeats", *repeats, "Chips (noise seeds) per model")
      ->check(integer_range<std::int64_t>(1, kMaxRepeats))
      ->capture_default_str();
  auto resume = std::make_shared<bool>(false);
  auto stop_after = std::make_shared<std::int64_t>(0);
  cmd->add_option("--csv", *csv,
                  "Write one row per (label, time) with every repeat's accuracy; its directory must exist. "
                  "During the run each finished repeat is kept in CSV.partial, so an interrupted run can be "
                  "resumed (--resume)");
  cmd->add_option("--plot", *plot,
                  "Draw accuracy vs time to this PNG with gnuplot (data written next to it); its directory must exist");
  cmd->add_option("--dataset", *dataset, "fashion-mnist[:DIR] or mnist:DIR")->capture_default_str();
  add_sample_limit(*cmd, "--limit-test", *limit, "test");
  cmd->add_flag("--resume", *resume,
                "Continue the interrupted run whose finished repeats are in CSV.partial (needs --csv and the "
                "options the run was started with; one that differs is refused, --threads may change): its "
                "repeats are kept, the rest run, and the CSV, the table's and the JSON's accuracies equal the "
                "uninterrupted run's bit for bit. Without CSV.partial all repeats run (with a note)");
  cmd->add_option("--stop-after-repeats", *stop_after,
                  "Testing aid: act as if SIGINT arrived once N repeats of this invocation finished")
      ->check(integer_range<std::int64_t>(1, INT64_MAX));
  cmd->footer(
      "Interruption: SIGINT or SIGTERM abandons the repeats in flight (at their next time point), keeps the "
      "finished ones in CSV.partial (with --csv), prints how to resume and exits with status 130 (SIGINT) or 143 "
      "(SIGTERM). A run given --csv refuses to start over an existing CSV.partial without --resume.");
  add_common_options(*cmd, *common);
  add_device_option(*cmd, *common);

  return [=] {
    apply_common_options(*common);
    const Device device = parse_device(common->device);
    Communicator& comm = Communicator::world();
    const bool root = comm.is_root();  // the one rank that reads and writes the journal and the outputs
    const auto start = std::chrono::steady_clock::now();
    const std::vector<double> times = parse_times(*times_spec);
    if (!labels->empty() && labels->size() != checkpoints->size())
      throw UsageError("got " + std::to_string(labels->size()) + " --label for " +
                       std::to_string(checkpoints->size()) + " --checkpoint; give one label per checkpoint or none");

    if (*resume && csv->empty())
      throw UsageError("--resume needs --csv: a run keeps its finished repeats next to its CSV (in CSV.partial) "
                       "and --resume continues from them");

    // Output paths before the work, so a typo does not cost the whole run.
    if (!csv->empty()) check_output_file("--csv", *csv);
    if (!plot->empty()) check_output_file("--plot", *plot);
    const std::string journal = csv->empty() ? std::string() : drift_journal_path(*csv);
    bool resuming = false;
    if (!journal.empty() && root) {
      check_output_file("--csv", journal);
      resuming = fs::exists(journal);
      if (resuming && !*resume)
        throw UsageError("--csv " + *csv + ": the journal " + journal + " of an interrupted run is there; continue " +
                         "that run with the same options plus --resume, or remove " + journal + " to start afresh");
      if (!resuming && *resume)
        std::cerr << "aimc: note: --resume: no journal " << journal
                  << " (no interrupted run to continue); running all repeats\n";
    }

    std::vector<DriftModel> models;
    const std::optional<RPUConfig> config =
        rpu->empty() ? std::nullopt : std::optional<RPUConfig>(resolve_rpu_config(*rpu));
    const ConfigSource source{"--rpu-config " + *rpu, "drop --rpu-config to use the checkpoint's own config"};
    for (std::size_t k = 0; k < checkpoints->size(); ++k) {
      const std::string& path = (*checkpoints)[k];
      const std::string label = labels->empty() ? fs::path(path).stem().string() : (*labels)[k];
      models.push_back(prepare_model(path, label, config ? &*config : nullptr, *rpu, source, kDigitalMessage,
                                     common->seed));
    }
    data::Dataset test = data::load_mnist_split(data::dataset_dir(*dataset), "t10k");
    if (*limit > 0) test = data::head(test, *limit);

    const std::int64_t n_rep = *repeats;
    const std::int64_t n_models = static_cast<std::int64_t>(models.size());
    const std::int64_t n_jobs = n_models * n_rep;
    for (auto& m : models) m.accuracy.assign(n_rep, std::vector<double>(times.size(), 0.0));
    std::vector<char> finished(n_jobs, 0);  // per job: model k, repeat r is job k * n_rep + r

    // The journal: this run's identity and the repeats an earlier invocation finished.
    // Its models' labels and the times also shape the lines the ranks send rank 0.
    DriftRunId id;
    for (const auto& m : models) id.models.push_back({m.label, m.path, 0, {}});
    id.times = times;
    id.repeats = n_rep;
    std::unique_ptr<DurableAppender> appender;
    std::int64_t kept = 0;
    if (!journal.empty() && root) {
      id.version = version();
      for (auto& jm : id.models) jm.checkpoint_hash = file_content_hash(jm.checkpoint, jm.checkpoint_bytes);
      if (config) id.rpu_config = config->to_json();
      id.seed = common->seed;
      id.test_samples = test.size();
      id.test_hash = dataset_content_hash(test);

      std::string content = drift_journal_header(id);
      if (resuming) {
        int dropped = 0;
        for (const DriftRepeat& r : read_drift_journal(journal, id, dropped)) {
          models[r.model].accuracy[r.repeat] = r.accuracy;
          finished[r.model * n_rep + r.repeat] = 1;
          content += drift_journal_line(id, r);
          ++kept;
        }
        if (dropped > 0)
          std::cerr << "aimc: note: dropped the unfinished last line of " << journal
                    << " (the run was stopped while writing it); that repeat runs again\n";
      }
      // The header (and on resume the kept repeats, without a cut-off line), then appends.
      write_file_atomically(journal, content);
      appender = std::make_unique<DurableAppender>(journal);
    }

    // Progress lines only after every check, so an error is the only line.
    if (!common->json && root)
      std::cerr << "drift: " << n_models << " model" << (n_models == 1 ? "" : "s") << " x " << n_rep
                << " repeat" << (n_rep == 1 ? "" : "s") << " x " << times.size() << " times on " << test.size()
                << " test samples" << (comm.size() > 1 ? " over " + std::to_string(comm.size()) + " ranks" : "")
                << "\n";
    if (!common->json && resuming)
      std::cerr << "drift: resuming " << journal << ": " << kept << " of " << n_jobs << " repeats done\n";
    std::vector<std::int64_t> todo;
    for (std::int64_t job = 0; job < n_jobs; ++job)
      if (!finished[job]) todo.push_back(job);
    std::atomic<std::int64_t> done{kept}, done_here{0};
    std::atomic<bool> stop_aid{false};  // --stop-after-repeats reached
    auto stop_requested = [&] { return stop_signal() != 0 || stop_aid.load(); };
    // A job's line (drift_journal_line) goes from whichever rank ran it to the one that records it.
    const RunPoint run_job = [&](std::int64_t job) -> std::optional<std::string> {
      if (stop_requested()) return std::nullopt;
      std::optional<std::vector<double>> result =
          run_chip(models[job / n_rep], common->seed, job % n_rep, times, test, stop_requested, device);
      if (!result) return std::nullopt;  // abandoned: it runs again on --resume
      return drift_journal_line(id, {job / n_rep, job % n_rep, std::move(*result)});
    };
    // One call at a time (the dispatcher's promise), on rank 0.
    const RecordPoint record = [&](std::int64_t job, const std::string& line) {
      if (appender) appender->append(line);
      DriftRepeat rep =
          parse_drift_journal_line(id, line.substr(0, line.size() - 1), "repeat " + std::to_string(job) + ": ");
      DriftModel& m = models[rep.model];
      m.accuracy[rep.repeat] = std::move(rep.accuracy);
      finished[job] = 1;
      const std::int64_t total = ++done;
      if (*stop_after > 0 && ++done_here >= *stop_after) stop_aid = true;
      if (!common->json)
        std::cerr << "drift: " << m.label << " repeat " << rep.repeat << " done (" << total << "/" << n_jobs << ")\n";
    };
    {
      StopSignals signals;
      // One job per (model, repeat), each on its own model copy and result slot.
      dispatch_over_ranks(comm, stop_requested)(todo, run_job, record);
    }
    // Every rank ends as rank 0 does: 0 when all jobs are done, else the interruption's status.
    std::string status = std::to_string(done < n_jobs ? interrupted_status(stop_signal()) : 0);
    comm.broadcast(status);
    if (!root) {
      if (status != "0") throw Interrupted{std::stoi(status)};
      return;
    }
    if (done < n_jobs) {
      const int signo = stop_signal();
      const std::string where = "aimc: interrupted with " + std::to_string(done.load()) + "/" + std::to_string(n_jobs) +
                                " repeats finished; ";
      if (appender) {
        appender->close();
        std::cerr << where << "they are kept in " << journal
                  << "; resume with: the same aimc drift command plus --resume\n";
      } else {
        std::cerr << where << "nothing kept (no --csv), the run cannot be resumed\n";
      }
      std::fflush(stdout);
      throw Interrupted{interrupted_status(signo)};
    }
    for (auto& m : models) m.stats = statistics(m.accuracy, times.size());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::vector<std::string> info;
    if (!csv->empty()) {
      write_file_atomically(*csv, build_csv(models, times, n_rep));
      appender->close();
      std::error_code ec;
      fs::remove(journal, ec);  // the CSV holds it all now
      if (ec) std::cerr << "aimc: warning: cannot remove " << journal << ": " << ec.message() << "\n";
      info.push_back("csv: " + *csv);
    }
    if (!plot->empty()) {
      try {
        const std::string line = make_plot(*plot, models, times, n_rep, *csv);
        if (!line.empty()) info.push_back(line);
      } catch (const std::exception& e) {  // plotting never fails the command
        std::cerr << "aimc: warning: no plot: " << e.what() << "\n";
      }
    }

    if (!common->json) {
      for (std::size_t k = 0; k < models.size(); ++k) {
        if (k) std::printf("\n");
        std::fputs(build_table(models[k], times, n_rep, test.size()).c_str(), stdout);
      }
      for (const auto& line : info) std::printf("%s\n", line.c_str());
      std::printf("(%.1f s)\n", seconds);
      std::fflush(stdout);
      return;
    }
    for (const auto& line : info) std::cerr << line << "\n";
    auto entry = [&](const DriftModel& m) {
      return nlohmann::json{{"label", m.label},          {"model", m.model},
                            {"checkpoint", m.path},      {"rpu_config", m.family},
                            {"accuracy_mean", m.stats.mean}, {"accuracy_std", m.stats.std},
                            {"accuracy", m.accuracy}};
    };
    nlohmann::json result;
    if (!rpu->empty()) result["rpu_config_spec"] = *rpu;
    if (models.size() == 1) {
      result.update(entry(models[0]));
    } else {
      result["models"] = nlohmann::json::array();
      for (const auto& m : models) result["models"].push_back(entry(m));
    }
    result["times"] = times;
    result["repeats"] = n_rep;
    result["ranks"] = comm.size();
    result["seed"] = common->seed;
    result["samples"] = test.size();
    result["seconds"] = seconds;
    print_json(result);
  };
}

}  // namespace aimc::cli
