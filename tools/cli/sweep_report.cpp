// The tables and plots of a finished sweep (see sweep_report.h).
#include "tools/cli/sweep_report.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "engine/error.h"
#include "tools/cli/durable_file.h"
#include "tools/cli/gnuplot.h"

namespace aimc::cli {
namespace {

namespace fs = std::filesystem;

// A CSV cell: quoted when it holds a comma, a quote or a newline.
std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// A field path as part of a file name: characters other than [A-Za-z0-9._-] become '_'.
std::string file_part(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return out;
}

}  // namespace

std::string value_text(const nlohmann::json& v) {
  if (v.is_number_float()) return exact(v.get<double>());
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string build_csv(const SweepExperiment& e, const std::vector<SweepEntry>& entries, const SweepGrid& grid) {
  std::ostringstream out;
  out << "label";
  for (const auto& f : e.vary) out << "," << csv_cell(f.path);
  out << ",time_s,accuracy_mean,accuracy_std";
  for (std::int64_t r = 0; r < e.repeats; ++r) out << ",acc_r" << r;
  out << "\n";
  for (const SweepEntry& en : entries) {
    const DriftModel& m = en.model;
    for (std::size_t i = 0; i < e.times.size(); ++i) {
      out << csv_cell(m.label);
      for (const auto& v : grid.values[en.variation]) out << "," << csv_cell(value_text(v));
      out << "," << exact(e.times[i]) << "," << exact(m.stats.mean[i]) << "," << exact(m.stats.std[i]);
      for (std::int64_t r = 0; r < e.repeats; ++r) out << "," << exact(m.accuracy[r][i]);
      out << "\n";
    }
  }
  return out.str();
}

nlohmann::json build_json(const SweepExperiment& e, const std::vector<SweepEntry>& entries, const SweepGrid& grid,
                          std::int64_t samples) {
  nlohmann::json fields = nlohmann::json::array();
  for (const auto& f : e.vary) fields.push_back(f.path);
  nlohmann::json rows = nlohmann::json::array();
  for (const SweepEntry& en : entries) {
    const DriftModel& m = en.model;
    nlohmann::json values = nlohmann::json::array();
    for (const auto& v : grid.values[en.variation]) values.push_back(v);
    rows.push_back({{"label", m.label},
                    {"checkpoint", m.path},
                    {"model", m.model},
                    {"rpu_config", m.family},
                    {"variation", en.variation},
                    {"values", values},
                    {"accuracy_mean", m.stats.mean},
                    {"accuracy_std", m.stats.std},
                    {"accuracy", m.accuracy}});
  }
  const nlohmann::json config = e.rpu_config_name.empty() ? nlohmann::json() : nlohmann::json(e.rpu_config_name);
  return {{"experiment", e.file}, {"rpu_config", config}, {"fields", fields},   {"times", e.times},
          {"repeats", e.repeats}, {"seed", e.seed},       {"samples", samples}, {"results", rows}};
}

std::string build_table(const SweepExperiment& e, const std::vector<SweepEntry>& entries, const SweepGrid& grid,
                        std::int64_t samples) {
  std::ostringstream out;
  for (std::size_t start = 0; start < entries.size(); start += grid.variations) {
    const DriftModel& first = entries[start].model;
    if (start) out << "\n";
    out << first.label << " (" << first.model << " on " << first.config_name << ", " << e.repeats << " repeat"
        << (e.repeats == 1 ? "" : "s") << ", " << samples << " test samples)\n";
    std::vector<std::vector<std::string>> cells(1);
    for (const auto& f : e.vary) cells[0].push_back(f.path);
    for (double t : e.times) cells[0].push_back(human_time(t));
    for (std::int64_t v = 0; v < grid.variations; ++v) {
      const DriftModel& m = entries[start + v].model;
      std::vector<std::string> row;
      for (const auto& value : grid.values[v]) row.push_back(value_text(value));
      for (std::size_t i = 0; i < e.times.size(); ++i) {
        char b[64];
        std::snprintf(b, sizeof b, "%.4f +- %.4f", m.stats.mean[i], m.stats.std[i]);
        row.push_back(b);
      }
      cells.push_back(row);
    }
    std::vector<std::size_t> width(cells[0].size(), 0);
    for (const auto& row : cells)
      for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
    for (const auto& row : cells) {
      std::string line = " ";
      for (std::size_t c = 0; c < row.size(); ++c) line += " " + row[c] + std::string(width[c] - row[c].size(), ' ');
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << line << "\n";
    }
  }
  return out.str();
}

std::string plot_field(const SweepExperiment& e, const std::vector<SweepEntry>& entries, const SweepGrid& grid,
                       std::size_t field, const std::string& gnuplot) {
  const SweepField& f = e.vary[field];
  const std::string base = e.output + "." + file_part(f.path);
  const std::string png = base + ".png", dat = base + ".dat", script = base + ".gp";
  const bool numeric = std::all_of(f.values.begin(), f.values.end(), [](const auto& v) { return v.is_number(); });
  // Series: entries sharing the checkpoint and the other fields' values, in grid order.
  std::map<std::pair<std::int64_t, std::vector<nlohmann::json>>, std::vector<const SweepEntry*>> groups;
  std::vector<std::pair<std::int64_t, std::vector<nlohmann::json>>> order;
  for (const SweepEntry& en : entries) {
    std::vector<nlohmann::json> others = grid.values[en.variation];
    others.erase(others.begin() + static_cast<std::ptrdiff_t>(field));
    auto key = std::pair{en.checkpoint, others};
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&en);
  }
  std::ostringstream data, gp;
  std::vector<std::string> titles;
  for (const auto& key : order) {
    std::string group;
    if (grid.checkpoints > 1) group = grid.labels[key.first];
    for (std::size_t o = 0, g = 0; o < e.vary.size(); ++o) {
      if (o == field) continue;
      group += (group.empty() ? "" : ", ") + e.vary[o].path + " = " + value_text(key.second[g++]);
    }
    for (std::size_t i = 0; i < e.times.size(); ++i) {
      titles.push_back((group.empty() ? "" : group + ", ") + human_time(e.times[i]));
      data << "# " << titles.back() << ": " << f.path << " accuracy_mean accuracy_std\n";
      for (std::size_t k = 0; k < groups[key].size(); ++k) {
        const SweepEntry& en = *groups[key][k];
        const nlohmann::json& value = grid.values[en.variation][field];
        data << (numeric ? exact(value.get<double>()) : std::to_string(k)) << " " << exact(en.model.stats.mean[i])
             << " " << exact(en.model.stats.std[i]) << "\n";
      }
      data << "\n\n";
    }
  }
  gp << "# aimc sweep: accuracy vs " << f.path << ". Render with: gnuplot " << script << "\n";
  gp << gnuplot_output_preamble(fs::absolute(png).string());
  gp << "set title " << gnuplot_quote("test accuracy vs " + f.path + ": mean +- std over " +
                                      std::to_string(e.repeats) + " chip" + (e.repeats == 1 ? "" : "s"))
     << "\n";
  // Field names hold underscores: plain text, not gnuplot's subscripts.
  gp << "set termoption noenhanced\n";
  gp << "set xlabel " << gnuplot_quote(f.path) << "\nset ylabel 'test accuracy'\nset grid\nset key below\n";
  // Room under the x label for the key (up to one line per series).
  gp << "set bmargin " << std::min<std::size_t>(4 + titles.size(), 25) << "\n";
  gp << "set offsets graph 0.05, graph 0.05, 0, 0\n";
  if (!numeric) {
    gp << "set xtics (";
    for (std::size_t k = 0; k < f.values.size(); ++k)
      gp << (k ? ", " : "") << gnuplot_quote(value_text(f.values[k])) << " " << k;
    gp << ")\n";
  }
  const std::string dat_abs = gnuplot_quote(fs::absolute(dat).string());
  gp << "plot ";
  for (std::size_t s = 0; s < titles.size(); ++s)
    gp << (s ? ", \\\n     " : "") << dat_abs << " index " << s << " using 1:2:3 with yerrorlines lw 2 pt 7 title "
       << gnuplot_quote(titles[s]);
  gp << "\n";
  try {
    write_file_atomically(dat, data.str());
    write_file_atomically(script, gp.str());
  } catch (const Error& err) {
    std::cerr << "aimc: warning: plot data not written: " << err.what() << "\n";
    return {};
  }
  if (gnuplot.empty()) return {};
  if (render_png(gnuplot, script, png)) return "plot: " + png;
  std::cerr << "aimc: warning: gnuplot failed to draw " << png << "; the data is in " << dat << " (script " << script
            << ")\n";
  return {};
}

}  // namespace aimc::cli
