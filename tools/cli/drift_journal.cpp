// The journal of a drift run (see drift_journal.h).
#include "tools/cli/drift_journal.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "engine/error.h"
#include "tools/cli/json_lines.h"

namespace aimc::cli {
namespace {

constexpr int kFormat = 1;
const char* const kKind = "aimc drift journal";

nlohmann::json run_json(const DriftRunId& id) {
  nlohmann::json models = nlohmann::json::array();
  for (const auto& m : id.models)
    models.push_back(
        {{"label", m.label}, {"checkpoint", m.checkpoint}, {"bytes", m.checkpoint_bytes}, {"hash", m.checkpoint_hash}});
  return {{"version", id.version},
          {"seed", id.seed},
          {"times", id.times},
          {"repeats", id.repeats},
          {"rpu_config", id.rpu_config},
          {"test_set", {{"samples", id.test_samples}, {"hash", id.test_hash}}},
          {"models", models}};
}

// A JSON value as a message shows it: numbers exactly, arrays of numbers
// comma-separated as --times takes them, anything else as JSON.
std::string shown(const nlohmann::json& v) {
  if (v.is_number_float()) return exact(v.get<double>());
  if (v.is_array() && !v.empty()) {
    std::string out;
    for (const auto& e : v) {
      if (!e.is_number()) return v.dump();
      if (!out.empty()) out += ',';
      out += shown(e);
    }
    return out;
  }
  return v.dump();
}

// What an rpu_config entry is, in words.
std::string config_in_words(const nlohmann::json& c) {
  if (c.is_null()) return "none (the checkpoints' own configs)";
  if (c.is_object() && c.contains("family") && c["family"].is_string()) return c["family"].get<std::string>();
  return c.dump();
}

// UsageError for a run whose identity differs from the journal's at `what`.
UsageError other_run(const std::string& path, const std::string& what) {
  return UsageError("--resume: the journal " + path + " belongs to another run: " + what +
                    "; --resume continues the journal's run and needs the options it was started with (or remove " +
                    path + " to start afresh)");
}

// Checks the journal's run (theirs) against this one (mine), field by field.
void check_same_run(const std::string& path, const nlohmann::json& mine, const nlohmann::json& theirs) {
  auto get = [&](const char* key) { return theirs.contains(key) ? theirs[key] : nlohmann::json(); };
  if (get("version") != mine["version"])
    throw other_run(path, "this is aimc " + mine["version"].get<std::string>() + ", the journal was written by aimc " +
                              shown(get("version")) + " (another build may differ in the last bit)");
  for (const auto& [key, flag] : {std::pair{"seed", "--seed"}, {"times", "--times"}, {"repeats", "--repeats"}})
    if (get(key) != mine[key])
      throw other_run(path, std::string(flag) + " " + shown(mine[key]) + " differs from " + shown(get(key)) +
                                " in the journal");
  if (get("rpu_config") != mine["rpu_config"]) {
    std::string a = config_in_words(mine["rpu_config"]), b = config_in_words(get("rpu_config"));
    if (a == b) b += " with other parameters";
    throw other_run(path, "--rpu-config " + a + " differs from " + b + " in the journal");
  }
  const nlohmann::json& ts = mine["test_set"];
  if (get("test_set") != ts)
    throw other_run(path, "the test set (" + ts["samples"].dump() + " samples, content hash " +
                              ts["hash"].get<std::string>() + ") differs from the journal's (" +
                              get("test_set").value("samples", nlohmann::json()).dump() + " samples, content hash " +
                              shown(get("test_set").value("hash", nlohmann::json())) +
                              "); check --dataset and --limit-test");
  const nlohmann::json& ms = mine["models"];
  const nlohmann::json theirs_models = get("models");
  if (!theirs_models.is_array() || theirs_models.size() != ms.size())
    throw other_run(path, std::to_string(ms.size()) + " --checkpoint differ from the journal's " +
                              (theirs_models.is_array() ? std::to_string(theirs_models.size()) : shown(theirs_models)));
  for (std::size_t k = 0; k < ms.size(); ++k) {
    const nlohmann::json& t = theirs_models[k];
    const std::string number = "checkpoint " + std::to_string(k + 1);
    if (t.value("label", nlohmann::json()) != ms[k]["label"])
      throw other_run(path, "the label " + ms[k]["label"].dump() + " of " + number + " differs from " +
                                t.value("label", nlohmann::json()).dump() + " in the journal (--label, or the file stem)");
    if (t.value("bytes", nlohmann::json()) != ms[k]["bytes"] || t.value("hash", nlohmann::json()) != ms[k]["hash"])
      throw other_run(path, number + " " + ms[k]["checkpoint"].get<std::string>() +
                                " is not the file the journal's run used (" + ms[k]["bytes"].dump() +
                                " bytes, content hash " + ms[k]["hash"].get<std::string>() + "; the journal has " +
                                t.value("bytes", nlohmann::json()).dump() + " bytes, content hash " +
                                shown(t.value("hash", nlohmann::json())) + " for " +
                                shown(t.value("checkpoint", nlohmann::json())) + ")");
  }
  // Anything else (a field of another format) differs too; the checkpoints' paths may (files move).
  auto without_paths = [](nlohmann::json run) {
    for (auto& m : run["models"]) m.erase("checkpoint");
    return run;
  };
  if (without_paths(theirs) != without_paths(mine))
    throw other_run(path, "its run description has other fields (" + theirs.dump() + ")");
}

}  // namespace

DriftRepeat parse_drift_journal_line(const DriftRunId& id, const std::string& text, const std::string& where) {
  const nlohmann::json j = parse_json_line(text, where);
  if (!j.is_object()) throw IoError(where + "not a JSON object");
  auto integer = [&](const char* key, std::int64_t n) {
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() >= n)
      throw IoError(where + "'" + key + "' must be an integer in [0, " + std::to_string(n - 1) + "]" +
                    (it == j.end() ? std::string(", got none") : ", got " + it->dump()));
    return it->get<std::int64_t>();
  };
  DriftRepeat r;
  r.model = integer("model", static_cast<std::int64_t>(id.models.size()));
  r.repeat = integer("repeat", id.repeats);
  const auto label = j.find("label");
  if (label == j.end() || *label != id.models[r.model].label)
    throw IoError(where + "'label' must be " + nlohmann::json(id.models[r.model].label).dump() + " (model " +
                  std::to_string(r.model) + "), got " + (label == j.end() ? "none" : label->dump()));
  const auto acc = j.find("accuracy");
  if (acc == j.end() || !acc->is_array() || acc->size() != id.times.size())
    throw IoError(where + "'accuracy' must be an array of " + std::to_string(id.times.size()) +
                  " numbers (one per time)");
  for (const auto& a : *acc) {
    if (!a.is_number() || !std::isfinite(a.get<double>()) || a.get<double>() < 0 || a.get<double>() > 1)
      throw IoError(where + "every 'accuracy' must be a number in [0, 1], got " + a.dump());
    r.accuracy.push_back(a.get<double>());
  }
  return r;
}

std::string drift_journal_path(const std::string& csv) { return csv + ".partial"; }

std::string drift_journal_header(const DriftRunId& id) {
  return nlohmann::json{{"kind", kKind}, {"format", kFormat}, {"run", run_json(id)}}.dump() + "\n";
}

std::string drift_journal_line(const DriftRunId& id, const DriftRepeat& r) {
  // nlohmann writes a double as text that reads back as the same double.
  return nlohmann::json{{"model", r.model},
                        {"label", id.models.at(r.model).label},
                        {"repeat", r.repeat},
                        {"accuracy", r.accuracy}}
             .dump() +
         "\n";
}

std::vector<DriftRepeat> read_drift_journal(const std::string& path, const DriftRunId& id,
                                            int& dropped_partial_lines) {
  const std::string file = "drift journal " + path;
  const JsonLines read = read_json_lines(path, file);
  dropped_partial_lines = read.dropped_partial_lines;  // written up to a kill: that repeat runs again
  const std::vector<std::string>& lines = read.lines;
  const nlohmann::json header = parse_json_line(lines[0], file + " line 1: ");
  if (!header.is_object() || header.value("kind", nlohmann::json()) != kKind || !header.contains("run") ||
      !header["run"].is_object())
    throw IoError("drift journal " + path + " line 1: not an aimc drift journal header");
  if (header.value("format", nlohmann::json()) != kFormat)
    throw IoError("drift journal " + path + " line 1: format " + header.value("format", nlohmann::json()).dump() +
                  " is not known (this aimc reads format " + std::to_string(kFormat) + ")");
  check_same_run(path, run_json(id), header["run"]);

  std::vector<DriftRepeat> repeats;
  std::map<std::pair<std::int64_t, std::int64_t>, std::size_t> seen;  // (model, repeat) -> line
  for (std::size_t i = 1; i < lines.size(); ++i) {
    DriftRepeat r =
        parse_drift_journal_line(id, lines[i], "drift journal " + path + " line " + std::to_string(i + 1) + ": ");
    const auto [it, fresh] = seen.emplace(std::pair{r.model, r.repeat}, i + 1);
    if (!fresh)
      throw IoError("drift journal " + path + " line " + std::to_string(i + 1) + ": model " +
                    std::to_string(r.model) + " repeat " + std::to_string(r.repeat) + " is already on line " +
                    std::to_string(it->second));
    repeats.push_back(std::move(r));
  }
  return repeats;
}

}  // namespace aimc::cli
