// `aimc drift`: test accuracy of one or more checkpoints on analog tiles at
// several times after programming (REFERENCE.md section 5), over repeated
// chips, as a table, JSON, a CSV file and an optional gnuplot PNG.
//
// Times are seconds after programming. Repeat r of every model runs on the chip
// reseed_analog(seed_for(seed, r)) with seed_for(S, r) = S * 1000003 + r + 1
// (unsigned 64-bit arithmetic), so all models of one run see the same chips
// (a paired comparison). Repeats run in parallel, each on its own model copy
// writing its own result slot: results do not depend on --threads.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <unistd.h>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "kernels/cpu/parallel.h"
#include "layers/config/presets.h"
#include "layers/tiles/tile_programming.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_checks.h"
#include "tools/training/trainer.h"

namespace aimc::cli {
namespace {

namespace fs = std::filesystem;

const char* const kDefaultTimes = "1,3600,86400,2592000,31536000";
constexpr double kMaxTime = 1e10;           // seconds (about 317 years)
constexpr std::size_t kMaxTimes = 1000;     // entries of --times
constexpr std::int64_t kMaxRepeats = 1000;  // chips per model

// The chip seed of repeat r (documented in the file comment).
std::uint64_t seed_for(std::uint64_t seed, std::int64_t r) {
  return seed * 1000003ULL + static_cast<std::uint64_t>(r) + 1ULL;
}

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

// "1 s", "1 h", "1 day", "30 days", "1 year"; other values in seconds.
std::string human_time(double t) {
  struct Unit {
    double seconds;
    const char* one;
    const char* many;
  };
  const Unit units[] = {{31536000.0, "year", "years"}, {86400.0, "day", "days"}, {3600.0, "h", "h"},
                        {60.0, "min", "min"}};
  char buf[64];
  for (const Unit& u : units) {
    const double k = t / u.seconds;
    if (t > 0 && k >= 1 && k == std::floor(k) && k < 1e6) {
      std::snprintf(buf, sizeof buf, "%.0f %s", k, k == 1 ? u.one : u.many);
      return buf;
    }
  }
  std::snprintf(buf, sizeof buf, "%g s", t);
  return buf;
}

// The shortest text that reads back as the same double.
std::string exact(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

struct Stats {
  std::vector<double> mean, std;
};

// Mean and sample standard deviation (ddof 1; 0 with one repeat) per time;
// acc[r][i] is repeat r at time i.
Stats statistics(const std::vector<std::vector<double>>& acc, std::size_t n_times) {
  Stats s;
  const double n = static_cast<double>(acc.size());
  for (std::size_t i = 0; i < n_times; ++i) {
    double sum = 0.0;
    for (const auto& row : acc) sum += row[i];
    const double mean = sum / n;
    double ss = 0.0;
    for (const auto& row : acc) ss += (row[i] - mean) * (row[i] - mean);
    s.mean.push_back(mean);
    s.std.push_back(acc.size() > 1 ? std::sqrt(ss / (n - 1.0)) : 0.0);
  }
  return s;
}

// Writes path.tmp, flushes it to the disk and renames it onto path, so the
// file at path is always whole; IoError naming the path on failure.
void write_file_atomically(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw IoError("cannot write " + tmp);
  const bool written = std::fwrite(content.data(), 1, content.size(), f) == content.size() && std::fflush(f) == 0 &&
                       ::fsync(fileno(f)) == 0;
  if (std::fclose(f) != 0 || !written) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw IoError("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError("cannot rename " + tmp + " to " + path);
  }
}

// The full path of an executable found on PATH, or "".
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  std::stringstream in(path);
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
  }
  return {};
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A string literal for gnuplot (single quotes; '' escapes a quote).
std::string gnuplot_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

// One checkpoint of the run: how to make a fresh model copy, and what it is.
struct DriftModel {
  std::string path, label, model, family;
  std::string config_name;  // what --rpu-config named (a preset, file or family), else the family
  std::function<std::shared_ptr<Module>()> make;
  std::vector<std::vector<double>> accuracy;  // [repeat][time]
  Stats stats;
};

DriftModel prepare_model(const std::string& path, const std::string& label, const std::string& rpu_spec,
                         std::uint64_t seed) {
  DriftModel m;
  m.path = path;
  m.label = label;
  Checkpoint ck = load_checkpoint(path);  // IoError (exit 2) when missing or garbled
  check_dataset_input(ck.description, path);
  m.model = ck.description.value("model", ck.model->type_name());
  // A named analog model has its config in the description; a model of one's
  // own (no model name) is analog when it has analog layers.
  const bool named_analog = ck.description.contains("rpu_config") && ck.description.contains("model");
  const std::string own_family = named_analog ? ck.description["rpu_config"].value("family", "?")
                                              : analog_family(*ck.model);
  const bool analog = !own_family.empty();
  if (!analog && rpu_spec.empty())
    throw UsageError("checkpoint " + path + " is digital: drift needs analog tiles; pass --rpu-config (a JSON " +
                     "file, a preset such as StandardHWATrainingPreset or a family name such as " +
                     "InferenceRPUConfig) to map its weights onto them");
  if (rpu_spec.empty()) {
    // The checkpoint's own analog model, exactly as saved.
    m.family = own_family;
    m.make = [path] { return load_checkpoint(path).model; };
  } else if (!named_analog) {
    // The digital weights (of a model of one's own: the exact weights of its
    // analog layers) mapped onto tiles of the given config, as `aimc eval --rpu-config`.
    const RPUConfig config = resolve_rpu_config(rpu_spec);
    m.family = config.family();
    m.make = [path, config, seed] {
      Checkpoint c = load_checkpoint(path);
      Generator gen(seed, kAnalogConversionStream);
      return convert_to_analog(convert_to_digital(c.model, gen), config, gen);
    };
  } else {
    // The analog model rebuilt with the given config; its state must fit strictly.
    const RPUConfig config = resolve_rpu_config(rpu_spec);
    m.family = config.family();
    nlohmann::json description = ck.description;
    description["rpu_config"] = config.to_json();
    m.make = [path, description, rpu_spec] {
      Checkpoint c = load_checkpoint(path);
      NamedTensors state;
      for (auto& [name, t] : c.model->state_dict())
        if (!is_tile_programming_key(name)) state.emplace_back(name, t);  // reprogrammed anyway
      Generator gen(0);  // initial values are overwritten by the state
      std::shared_ptr<Module> model = build_model_from_description(description, gen);
      try {
        model->load_state_dict(state, true);
      } catch (const Error& e) {
        throw UsageError("--rpu-config " + rpu_spec + " does not fit analog checkpoint " + path +
                         ": the config's tile structure (tiles, their parameters and buffers) differs from the " +
                         "checkpoint's (" + e.what() + "); drop --rpu-config to use the checkpoint's own config");
      }
      return model;
    };
  }
  m.config_name = rpu_spec.empty() ? m.family : rpu_spec;
  m.make();  // fail early, on this thread, with a clean message
  return m;
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
  // Run by hand, the script draws the PNG itself; aimc sets its own terminal
  // and a temporary name (aimc_output), renamed into place once drawn.
  gp << "if (!exists('aimc_output')) set terminal png size 900,600; aimc_output = " << gnuplot_quote(png_abs)
     << "\n";
  gp << "set output aimc_output\n";
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
  // pngcairo where gnuplot has it, else the plain png terminal.
  const std::string terminals[] = {"set terminal pngcairo size 900,600 font ',11'",
                                   "set terminal png size 900,600"};
  const std::string png_tmp = png_abs + ".tmp";
  for (const std::string& term : terminals) {
    const std::string cmd = shell_quote(gnuplot) + " -e " + shell_quote(term) + " -e " +
                            shell_quote("aimc_output = " + gnuplot_quote(png_tmp)) + " " + shell_quote(script_path) +
                            " >/dev/null 2>&1";
    std::error_code ec;
    if (std::system(cmd.c_str()) == 0 && fs::exists(png_tmp, ec) && fs::file_size(png_tmp, ec) > 0) {
      fs::rename(png_tmp, png, ec);
      if (!ec) return "plot: " + png;
    }
    fs::remove(png_tmp, ec);
  }
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
  cmd->add_option("--csv", *csv,
                  "Write one row per (label, time) with every repeat's accuracy; its directory must exist");
  cmd->add_option("--plot", *plot,
                  "Draw accuracy vs time to this PNG with gnuplot (data written next to it); its directory must exist");
  cmd->add_option("--dataset", *dataset, "fashion-mnist[:DIR] or mnist:DIR")->capture_default_str();
  add_sample_limit(*cmd, "--limit-test", *limit, "test");
  add_common_options(*cmd, *common);

  return [=] {
    apply_common_options(*common);
    const auto start = std::chrono::steady_clock::now();
    const std::vector<double> times = parse_times(*times_spec);
    if (!labels->empty() && labels->size() != checkpoints->size())
      throw UsageError("got " + std::to_string(labels->size()) + " --label for " +
                       std::to_string(checkpoints->size()) + " --checkpoint; give one label per checkpoint or none");

    // Output paths before the work, so a typo does not cost the whole run.
    if (!csv->empty()) check_output_file("--csv", *csv);
    if (!plot->empty()) check_output_file("--plot", *plot);

    std::vector<DriftModel> models;
    for (std::size_t k = 0; k < checkpoints->size(); ++k) {
      const std::string& path = (*checkpoints)[k];
      const std::string label = labels->empty() ? fs::path(path).stem().string() : (*labels)[k];
      models.push_back(prepare_model(path, label, *rpu, common->seed));
    }
    data::Dataset test = data::load_mnist_split(data::dataset_dir(*dataset), "t10k");
    if (*limit > 0) test = data::head(test, *limit);

    const std::int64_t n_rep = *repeats;
    const std::int64_t n_models = static_cast<std::int64_t>(models.size());
    for (auto& m : models) m.accuracy.assign(n_rep, std::vector<double>(times.size(), 0.0));
    if (!common->json)
      std::cerr << "drift: " << n_models << " model" << (n_models == 1 ? "" : "s") << " x " << n_rep
                << " repeat" << (n_rep == 1 ? "" : "s") << " x " << times.size() << " times on " << test.size()
                << " test samples\n";
    std::atomic<std::int64_t> done{0};
    std::mutex io;
    // One job per (model, repeat), each on its own model copy and result slot.
    cpu::parallel_for(0, n_models * n_rep, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t job = lo; job < hi; ++job) {
        DriftModel& m = models[job / n_rep];
        const std::int64_t r = job % n_rep;
        std::shared_ptr<Module> model = m.make();
        model->eval();
        model->reseed_analog(seed_for(common->seed, r));
        model->program_analog_weights();
        for (std::size_t i = 0; i < times.size(); ++i) {
          model->drift_analog_weights(times[i]);
          m.accuracy[r][i] = training::evaluate_accuracy(*model, test);
        }
        const std::int64_t finished = ++done;
        if (!common->json) {
          std::lock_guard<std::mutex> lock(io);
          std::cerr << "drift: " << m.label << " repeat " << r << " done (" << finished << "/" << n_models * n_rep
                    << ")\n";
        }
      }
    });
    for (auto& m : models) m.stats = statistics(m.accuracy, times.size());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    std::vector<std::string> info;
    if (!csv->empty()) {
      write_file_atomically(*csv, build_csv(models, times, n_rep));
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
    result["seed"] = common->seed;
    result["samples"] = test.size();
    result["seconds"] = seconds;
    print_json(result);
  };
}

}  // namespace aimc::cli
