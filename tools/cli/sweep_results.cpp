// The results file of a sweep (see sweep_results.h).
#include "tools/cli/sweep_results.h"

#include <cmath>
#include <map>

#include "engine/error.h"
#include "tools/cli/file_identity.h"
#include "tools/cli/json_lines.h"

namespace aimc::cli {
namespace {

constexpr int kFormat = 1;
const char* const kKind = "aimc sweep results";

std::string identity_hash(const nlohmann::json& identity) {
  const std::string text = identity.dump();  // keys sorted: canonical
  ContentHash h;
  h.update(text.data(), text.size());
  return h.hex();
}

std::string shown(const nlohmann::json& v) {
  const std::string s = v.dump();
  return s.size() <= 80 ? s : s.substr(0, 77) + "...";
}

// The first place (a dotted path) where two JSON values differ, or "".
std::string first_difference(const nlohmann::json& mine, const nlohmann::json& theirs, const std::string& path,
                             nlohmann::json& a, nlohmann::json& b) {
  if (mine == theirs) return {};
  auto at = [&](const std::string& key) { return path.empty() ? key : path + "." + key; };
  if (mine.is_object() && theirs.is_object()) {
    for (const auto& [key, value] : mine.items()) {
      const std::string d =
          first_difference(value, theirs.contains(key) ? theirs[key] : nlohmann::json(), at(key), a, b);
      if (!d.empty()) return d;
    }
    for (const auto& [key, value] : theirs.items())
      if (!mine.contains(key)) {
        a = nlohmann::json();
        b = value;
        return at(key);
      }
  }
  if (mine.is_array() && theirs.is_array() && mine.size() == theirs.size() && !mine.empty() &&
      (mine[0].is_object() || mine[0].is_array())) {
    for (std::size_t i = 0; i < mine.size(); ++i) {
      const std::string d = first_difference(mine[i], theirs[i], path + "[" + std::to_string(i) + "]", a, b);
      if (!d.empty()) return d;
    }
  }
  a = mine;
  b = theirs;
  return path;
}

// What a difference at path means, for the message.
std::string hint(const std::string& path) {
  if (path.rfind("checkpoints", 0) == 0) return " (a checkpoint file's content differs)";
  if (path.rfind("test_set", 0) == 0) return " (check dataset and limit_test)";
  if (path == "version") return " (another build may differ in the last bit)";
  if (path.rfind("rpu_config", 0) == 0) return " (the resolved base RPU config)";
  return "";
}

}  // namespace

SweepPoint sweep_point(const SweepGrid& grid, std::int64_t p) {
  SweepPoint s;
  s.point = p;
  s.repeat = p % grid.repeats;
  s.variation = (p / grid.repeats) % grid.variations;
  s.checkpoint = p / (grid.repeats * grid.variations);
  return s;
}

std::string sweep_results_header(const nlohmann::json& identity) {
  return nlohmann::json{{"kind", kKind},
                        {"format", kFormat},
                        {"experiment_hash", identity_hash(identity)},
                        {"experiment", identity}}
             .dump() +
         "\n";
}

namespace {

nlohmann::json point_json(const SweepGrid& grid, const SweepPoint& p) {
  nlohmann::json values = nlohmann::json::object();
  for (std::size_t f = 0; f < grid.fields.size(); ++f) values[grid.fields[f]] = grid.values.at(p.variation)[f];
  // nlohmann writes a double as text that reads back as the same double.
  return {{"point", p.point},           {"checkpoint", p.checkpoint}, {"label", grid.labels.at(p.checkpoint)},
          {"variation", p.variation},   {"values", values},           {"repeat", p.repeat},
          {"accuracy", p.accuracy}};
}

}  // namespace

std::string sweep_result_line(const SweepGrid& grid, const SweepPoint& point) {
  return point_json(grid, point).dump() + "\n";
}

SweepPoint parse_sweep_result_line(const SweepGrid& grid, const std::string& line, const std::string& where) {
  const nlohmann::json j = parse_json_line(line, where);
  if (!j.is_object()) throw IoError(where + "not a JSON object");
  const auto it = j.find("point");
  const std::int64_t n = grid.points();
  if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() >= n)
    throw IoError(where + "'point' must be an integer in [0, " + std::to_string(n - 1) + "], got " +
                  (it == j.end() ? std::string("none") : shown(*it)));
  SweepPoint p = sweep_point(grid, it->get<std::int64_t>());
  const auto acc = j.find("accuracy");
  if (acc == j.end() || !acc->is_array() || acc->size() != grid.times)
    throw IoError(where + "'accuracy' must be an array of " + std::to_string(grid.times) +
                  " numbers (one per time)");
  for (const auto& a : *acc) {
    if (!a.is_number() || !std::isfinite(a.get<double>()) || a.get<double>() < 0 || a.get<double>() > 1)
      throw IoError(where + "every 'accuracy' must be a number in [0, 1], got " + shown(a));
    p.accuracy.push_back(a.get<double>());
  }
  const nlohmann::json expected = point_json(grid, p);
  for (const auto& [key, value] : expected.items())
    if (!j.contains(key) || j[key] != value)
      throw IoError(where + "'" + key + "' of point " + std::to_string(p.point) + " must be " + shown(value) +
                    ", got " + (j.contains(key) ? shown(j[key]) : std::string("none")));
  if (j.size() != expected.size()) throw IoError(where + "has fields other than those of a point: " + shown(j));
  return p;
}

std::vector<SweepPoint> read_sweep_results(const std::string& path, const nlohmann::json& identity,
                                           const SweepGrid& grid, int& dropped_partial_lines) {
  const std::string file = "results file " + path;
  const JsonLines read = read_json_lines(path, file);
  dropped_partial_lines = read.dropped_partial_lines;  // written up to a kill: that point runs again
  const std::vector<std::string>& lines = read.lines;
  const nlohmann::json header = parse_json_line(lines[0], file + " line 1: ");
  if (!header.is_object() || header.value("kind", nlohmann::json()) != kKind || !header.contains("experiment"))
    throw IoError(file + " line 1: not an aimc sweep results header");
  if (header.value("format", nlohmann::json()) != kFormat)
    throw IoError(file + " line 1: format " + shown(header.value("format", nlohmann::json())) +
                  " is not known (this aimc reads format " + std::to_string(kFormat) + ")");
  nlohmann::json a, b;
  const std::string d = first_difference(identity, header["experiment"], "", a, b);
  if (!d.empty())
    throw UsageError(file + " belongs to another experiment: " + d + " is " + shown(a) + " here and " + shown(b) +
                     " in the file" + hint(d) + "; give this experiment another \"results\" file, or remove " + path +
                     " to start afresh");
  if (header.value("experiment_hash", nlohmann::json()) != identity_hash(identity))
    throw IoError(file + " line 1: the experiment_hash does not match its experiment (the header was edited)");

  std::vector<SweepPoint> points;
  std::map<std::int64_t, std::size_t> seen;  // point -> line
  for (std::size_t i = 1; i < lines.size(); ++i) {
    SweepPoint p = parse_sweep_result_line(grid, lines[i], file + " line " + std::to_string(i + 1) + ": ");
    const auto [it, fresh] = seen.emplace(p.point, i + 1);
    if (!fresh)
      throw IoError(file + " line " + std::to_string(i + 1) + ": point " + std::to_string(p.point) +
                    " is already on line " + std::to_string(it->second));
    points.push_back(std::move(p));
  }
  return points;
}

}  // namespace aimc::cli
