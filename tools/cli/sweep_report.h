// The outputs of a finished sweep: OUTPUT.json (per checkpoint x variation:
// the varied values and the accuracy mean, std and every repeat at each
// time), OUTPUT.csv (one row per checkpoint x variation x time), the table
// on stdout, and with --plot OUTPUT.FIELD.png per varied field. Numbers are
// written as text that reads back as the same double; nothing depends on
// the run's timing, so a resumed sweep writes the same bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tools/cli/drift_common.h"
#include "tools/cli/sweep_experiment.h"
#include "tools/cli/sweep_results.h"

namespace aimc::cli {

// One (checkpoint, variation) of the sweep: its model and, once done, its
// accuracies and their statistics. A sweep's entries are in grid order,
// entry checkpoint * variations + variation.
struct SweepEntry {
  DriftModel model;
  std::int64_t checkpoint = 0, variation = 0;
};

// A varied value as text: numbers exactly, strings bare, anything else as JSON.
std::string value_text(const nlohmann::json& v);

std::string build_csv(const SweepExperiment& e, const std::vector<SweepEntry>& entries, const SweepGrid& grid);
nlohmann::json build_json(const SweepExperiment& e, const std::vector<SweepEntry>& entries, const SweepGrid& grid,
                          std::int64_t samples);
// The table: per checkpoint, one row per variation with mean +- std at each time.
std::string build_table(const SweepExperiment& e, const std::vector<SweepEntry>& entries, const SweepGrid& grid,
                        std::int64_t samples);

// OUTPUT.FIELD.png: accuracy (mean +- std) vs the value of varied field
// `field`, one line per time (and per checkpoint and value of the other
// fields); numeric values on a linear axis, others as labelled ticks.
// Writes OUTPUT.FIELD.dat and .gp and, when gnuplot (its path) is not "",
// draws the PNG. Never throws on file or gnuplot errors (warnings on
// stderr). Returns "plot: PNG" when drawn, else "".
std::string plot_field(const SweepExperiment& e, const std::vector<SweepEntry>& entries, const SweepGrid& grid,
                       std::size_t field, const std::string& gnuplot);

}  // namespace aimc::cli
