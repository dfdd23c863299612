// The results file of `aimc sweep`: JSON lines. The first identifies the
// experiment (its identity JSON, with every checkpoint's and the test set's
// content hash, and a hash of that JSON); each further line is one finished
// point (checkpoint, variation, repeat) with its accuracy at every time,
// appended and fsync'd as the point finishes, by the one writer. A rerun
// with the same file reads the finished points back and runs the rest.
// Numbers are written as text that reads back as the same double, so the
// tables of a resumed sweep have the same bytes as an uninterrupted one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace aimc::cli {

// The shape of a sweep: point p = (checkpoint k, variation v, repeat r) with
// p = (k * variations + v) * repeats + r.
struct SweepGrid {
  std::int64_t checkpoints = 0, variations = 0, repeats = 0;
  std::size_t times = 0;
  std::vector<std::string> labels;                      // per checkpoint
  std::vector<std::vector<nlohmann::json>> values;      // per variation: one value per varied field
  std::vector<std::string> fields;                      // the varied fields

  std::int64_t points() const { return checkpoints * variations * repeats; }
};

struct SweepPoint {
  std::int64_t point = 0, checkpoint = 0, variation = 0, repeat = 0;
  std::vector<double> accuracy;  // per time
};

// Point p's coordinates (accuracy empty).
SweepPoint sweep_point(const SweepGrid& grid, std::int64_t p);

// The first line (with its newline) for an experiment identity.
std::string sweep_results_header(const nlohmann::json& identity);
// A finished point's line (with its newline).
std::string sweep_result_line(const SweepGrid& grid, const SweepPoint& point);
// A point's line (without its newline) read back; IoError "WHERE..." naming
// what is wrong (not JSON, a point out of range, fields that do not match
// the point, accuracies not in [0, 1]).
SweepPoint parse_sweep_result_line(const SweepGrid& grid, const std::string& line, const std::string& where);

// The finished points of the results file at path, checked against the
// experiment: UsageError naming the first field of the experiment that
// differs from the one that wrote the file; IoError naming the line for a
// line that is not a valid point (or a point given twice). A last line
// without its newline (a kill while it was written) is dropped and counted
// in dropped_partial_lines.
std::vector<SweepPoint> read_sweep_results(const std::string& path, const nlohmann::json& identity,
                                           const SweepGrid& grid, int& dropped_partial_lines);

}  // namespace aimc::cli
