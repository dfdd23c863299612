// The experiment file of `aimc sweep` (see sweep_experiment.h).
#include "tools/cli/sweep_experiment.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/error.h"
#include "engine/json_input.h"
#include "engine/runtime.h"
#include "layers/config/json_fields.h"
#include "layers/config/presets.h"
#include "tools/cli/drift_common.h"
#include "tools/data/idx.h"

namespace aimc::cli {
namespace {

namespace fs = std::filesystem;
using OrderedJson = nlohmann::ordered_json;

constexpr std::size_t kMaxValues = 1000;  // values of one varied field

const char* const kFields[] = {"checkpoints", "rpu_config", "vary",    "times",   "repeats",
                               "seed",        "dataset",    "limit_test", "results", "output"};

// A value as a message shows it: at most 60 characters of its JSON.
std::string shown(const OrderedJson& v) {
  const std::string s = v.dump();
  return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

std::string type_name(const OrderedJson& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

bool known_name(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

class Reader {
 public:
  Reader(std::string file) : file_(std::move(file)), dir_(fs::path(file_).parent_path()) {}

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw ConfigError("experiment " + file_ + ": " + field + " " + what);
  }
  void expect(bool ok, const std::string& field, const std::string& expected, const OrderedJson& got) const {
    if (!ok) fail(field, "must be " + expected + ", got " + type_name(got) + " " + shown(got));
  }
  // A relative path is relative to the experiment file's directory.
  std::string resolve(const std::string& p) const {
    return fs::path(p).is_absolute() ? p : (dir_ / p).string();
  }
  std::string string_field(const OrderedJson& v, const std::string& field) const {
    expect(v.is_string() && !v.get<std::string>().empty(), field, "a non-empty string", v);
    return v.get<std::string>();
  }
  std::int64_t integer_field(const OrderedJson& v, const std::string& field, std::int64_t lo, std::int64_t hi) const {
    const std::string range = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    expect(v.is_number_integer(), field, range, v);
    // Large unsigned values would wrap as int64: compare them unsigned.
    const bool inside =
        v.is_number_unsigned()
            ? v.get<std::uint64_t>() <= std::uint64_t(hi) && (lo <= 0 || v.get<std::uint64_t>() >= std::uint64_t(lo))
            : v.get<std::int64_t>() >= lo && v.get<std::int64_t>() <= hi;
    if (!inside) fail(field, "must be " + range + ", got " + shown(v));
    return v.get<std::int64_t>();
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  fs::path dir_;
};

// The config named by a string (a preset, a family, or a JSON file) or given inline.
RPUConfig read_rpu_config(const Reader& in, const OrderedJson& v, std::string& name) {
  try {
    if (v.is_string()) {
      const std::string spec = in.string_field(v, "rpu_config");
      name = spec;
      if (known_name(rpu_config_presets(), spec) || known_name(rpu_config_families(), spec))
        return resolve_rpu_config(spec);
      return resolve_rpu_config(in.resolve(spec));
    }
    in.expect(v.is_object(), "rpu_config",
              "a preset or family name, a JSON file, or an inline object with a \"family\"", v);
    RPUConfig c = RPUConfig::from_json(nlohmann::json::parse(v.dump()));
    c.validate();
    name = "inline " + c.family();
    return c;
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    if (what.rfind("experiment ", 0) == 0) throw;
    in.fail("rpu_config", "is not a valid RPU config: " + what);
  }
}

std::string describe(const std::vector<SweepField>& fields, const std::vector<nlohmann::json>& values) {
  std::string out;
  for (std::size_t f = 0; f < fields.size(); ++f)
    out += (f ? ", " : "") + fields[f].path + " = " + values[f].dump();
  return out;
}

// The config of base with the fields set; ConfigError naming what (a
// message prefix) when the parser or validate refuses it.
RPUConfig varied_config(const Reader& in, const nlohmann::json& base, const std::vector<SweepField>& fields,
                        const std::vector<nlohmann::json>& values, const std::string& what) {
  try {
    nlohmann::json j = base;
    for (std::size_t f = 0; f < fields.size(); ++f) j = with_field(std::move(j), fields[f].path, values[f]);
    RPUConfig c = RPUConfig::from_json(j);
    c.validate();
    return c;
  } catch (const ConfigError& e) {
    in.fail(what, "gives an invalid RPU config: " + std::string(e.what()));
  }
}

}  // namespace

nlohmann::json with_field(nlohmann::json config, const std::string& dotted, const nlohmann::json& value) {
  nlohmann::json* node = &config;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = dotted.find('.', start);
    const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object())
      throw ConfigError("the RPU config field " + dotted.substr(0, start - 1) + " is " + node->dump() +
                        ", not an object with a field \"" + key + "\"");
    if (dot == std::string::npos) {
      (*node)[key] = value;  // an unknown key is left to the config parser to name
      return config;
    }
    if (!node->contains(key)) (*node)[key] = nlohmann::json::object();
    node = &(*node)[key];
    start = dot + 1;
  }
}

std::int64_t SweepExperiment::variations() const {
  std::int64_t n = 1;
  for (const auto& f : vary) n *= static_cast<std::int64_t>(f.values.size());
  return n;
}

std::vector<nlohmann::json> SweepExperiment::values_of(std::int64_t v) const {
  std::vector<nlohmann::json> values(vary.size());
  for (std::size_t f = vary.size(); f-- > 0;) {  // the last field varies fastest
    const auto n = static_cast<std::int64_t>(vary[f].values.size());
    values[f] = vary[f].values[v % n];
    v /= n;
  }
  return values;
}

nlohmann::json SweepExperiment::identity() const {
  nlohmann::json fields = nlohmann::json::array();
  for (const auto& f : vary) fields.push_back({{"field", f.path}, {"values", f.values}});
  return {{"version", version()},
          {"seed", seed},
          {"times", times},
          {"repeats", repeats},
          {"rpu_config", rpu_config ? rpu_config->to_json() : nlohmann::json()},
          {"vary", fields}};
}

SweepExperiment read_sweep_experiment(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw IoError("experiment " + path + ": " + (fs::exists(path, ec) ? "not a regular file" : "no such file"));
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  if (!file) throw IoError("experiment " + path + ": cannot read it");
  std::string error;
  const std::optional<OrderedJson> parsed = parse_json_bounded<OrderedJson>(text.str(), error);
  if (!parsed) throw ConfigError("experiment " + path + ": " + error);
  const OrderedJson& j = *parsed;
  Reader in(path);
  if (!j.is_object()) throw ConfigError("experiment " + path + ": must be a JSON object, got " + type_name(j));
  for (const auto& item : j.items()) {
    const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture one
    if (std::find_if(std::begin(kFields), std::end(kFields), [&](const char* f) { return key == f; }) ==
        std::end(kFields)) {
      std::string known;
      for (const char* f : kFields) known += std::string(known.empty() ? "" : ", ") + f;
      in.fail("\"" + key + "\"", "is not a field of an experiment (fields: " + known + ")");
    }
  }

  SweepExperiment e;
  e.file = path;
  const fs::path stem = fs::path(path).parent_path() / fs::path(path).stem();

  // checkpoints: paths or {"path", "label"}.
  if (!j.contains("checkpoints")) in.fail("checkpoints", "is missing: give the checkpoints to sweep (a list of paths)");
  const OrderedJson& cks = j["checkpoints"];
  in.expect(cks.is_array() && !cks.empty(), "checkpoints", "a non-empty list of paths", cks);
  for (std::size_t k = 0; k < cks.size(); ++k) {
    const std::string field = "checkpoints[" + std::to_string(k) + "]";
    const OrderedJson& c = cks[k];
    SweepCheckpoint ck;
    if (c.is_string()) {
      ck.path = in.string_field(c, field);
    } else {
      in.expect(c.is_object(), field, "a path or an object {\"path\": ..., \"label\": ...}", c);
      for (const auto& [key, value] : c.items())
        if (key != "path" && key != "label")
          in.fail(field + ".\"" + key + "\"", "is not a field (fields: path, label)");
      if (!c.contains("path")) in.fail(field + ".path", "is missing");
      ck.path = in.string_field(c["path"], field + ".path");
      if (c.contains("label")) ck.label = in.string_field(c["label"], field + ".label");
    }
    if (ck.label.empty()) ck.label = fs::path(ck.path).stem().string();
    ck.path = in.resolve(ck.path);
    if (!fs::is_regular_file(ck.path, ec))
      in.fail(field, "names " + ck.path + ", which is " + (fs::exists(ck.path, ec) ? "not a regular file" : "missing"));
    e.checkpoints.push_back(ck);
  }

  if (j.contains("rpu_config")) e.rpu_config = read_rpu_config(in, j["rpu_config"], e.rpu_config_name);

  if (j.contains("vary")) {
    const OrderedJson& vary = j["vary"];
    in.expect(vary.is_object(), "vary",
              "an object mapping RPU config fields (\"forward.out_noise\") to lists of values", vary);
    if (!vary.empty() && !e.rpu_config)
      in.fail("vary", "needs \"rpu_config\": the config whose fields are varied");
    for (const auto& [key, values] : vary.items()) {
      const std::string field = "vary \"" + key + "\"";
      if (key.empty() || key.front() == '.' || key.back() == '.' || key.find("..") != std::string::npos)
        in.fail(field, "is not a dotted field path such as forward.out_noise");
      if (key == "family") in.fail(field, "cannot vary the family (sweep one family per experiment)");
      in.expect(values.is_array() && !values.empty(), field, "a non-empty list of values", values);
      if (values.size() > kMaxValues) in.fail(field, "has more than " + std::to_string(kMaxValues) + " values");
      SweepField f{key, {}};
      for (const auto& v : values) {
        nlohmann::json value = nlohmann::json::parse(v.dump());
        if (std::find(f.values.begin(), f.values.end(), value) != f.values.end())
          in.fail(field, "lists " + value.dump() + " twice");
        f.values.push_back(std::move(value));
      }
      e.vary.push_back(std::move(f));
    }
  }

  if (!j.contains("times")) in.fail("times", "is missing: give the seconds after programming, e.g. [1, 86400]");
  const OrderedJson& times = j["times"];
  const std::string range = "[0, " + config::format_number(kMaxTime) + "]";
  in.expect(times.is_array() && !times.empty(), "times", "a non-empty list of seconds after programming", times);
  if (times.size() > kMaxTimes) in.fail("times", "has more than " + std::to_string(kMaxTimes) + " entries");
  for (std::size_t i = 0; i < times.size(); ++i) {
    const std::string field = "times[" + std::to_string(i) + "]";
    in.expect(times[i].is_number(), field, "a finite number of seconds in " + range, times[i]);
    const double t = times[i].get<double>();
    if (!std::isfinite(t) || t < 0 || t > kMaxTime)
      in.fail(field, "must be a finite number of seconds in " + range + ", got " + shown(times[i]));
    e.times.push_back(t);
  }
  if (j.contains("repeats")) e.repeats = in.integer_field(j["repeats"], "repeats", 1, kMaxRepeats);
  if (j.contains("seed")) {
    const OrderedJson& s = j["seed"];
    in.expect(s.is_number_unsigned() || (s.is_number_integer() && s.get<std::int64_t>() >= 0), "seed",
              "an integer in [0, 18446744073709551615]", s);
    e.seed = s.get<std::uint64_t>();
  }
  if (j.contains("dataset")) {
    e.dataset = in.string_field(j["dataset"], "dataset");
    try {
      data::dataset_dir(e.dataset);
    } catch (const UsageError& err) {
      in.fail("dataset", std::string("is not a dataset: ") + err.what());
    }
    const auto colon = e.dataset.find(':');
    if (colon != std::string::npos)
      e.dataset = e.dataset.substr(0, colon + 1) + in.resolve(e.dataset.substr(colon + 1));
  }
  if (j.contains("limit_test")) e.limit_test = in.integer_field(j["limit_test"], "limit_test", 0, data::kMaxSamples);
  e.results = j.contains("results") ? in.resolve(in.string_field(j["results"], "results"))
                                    : stem.string() + ".results.jsonl";
  e.output = j.contains("output") ? in.resolve(in.string_field(j["output"], "output")) : stem.string() + ".sweep";

  const std::int64_t points = static_cast<std::int64_t>(e.checkpoints.size()) * e.repeats;
  std::int64_t variations = 1;
  for (const auto& f : e.vary) {
    variations *= static_cast<std::int64_t>(f.values.size());
    if (variations * points > kMaxSweepPoints)
      in.fail("vary", "gives more than " + std::to_string(kMaxSweepPoints) +
                          " points (checkpoints x variations x repeats)");
  }

  // Every variation through the config parser: each field alone first, so
  // an unknown field or a bad value is named by itself.
  if (e.rpu_config) {
    const nlohmann::json base = e.rpu_config->to_json();
    for (const auto& f : e.vary)
      for (const auto& v : f.values)
        varied_config(in, base, {f}, {v}, "vary \"" + f.path + "\" = " + v.dump());
    for (std::int64_t v = 0; v < variations; ++v) {
      const auto values = e.values_of(v);
      e.configs.push_back(varied_config(in, base, e.vary, values, "the variation " + describe(e.vary, values)));
    }
  }
  return e;
}

}  // namespace aimc::cli
