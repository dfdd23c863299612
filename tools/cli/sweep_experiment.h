// The experiment file of `aimc sweep`: checkpoints x RPU-config variations
// x times x repeats, read strictly (every field checked, ConfigError naming
// the field and the allowed values, before any work).
//
//   {"checkpoints": ["mlp.safetensors", {"path": "b.safetensors", "label": "b"}],
//    "rpu_config": "StandardHWATrainingPreset",          (or an inline JSON object)
//    "vary": {"forward.out_noise": [0.0, 0.04],
//             "noise_model.prog_noise_scale": [0.5, 1.0]},
//    "times": [1, 86400], "repeats": 3, "seed": 0,
//    "dataset": "fashion-mnist", "limit_test": 0,
//    "results": "exp.results.jsonl", "output": "exp.sweep"}
//
// vary maps dotted paths of fields inside the RPU config's JSON to lists of
// values; the variations are the Cartesian product of the lists, in the
// order the fields are written, the last field varying fastest. Each
// variation is the base config's JSON with those fields set, read by the
// normal RPU config parser (an unknown field or a value out of range is a
// ConfigError naming it). Relative paths are relative to the experiment
// file's directory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/config/rpu_config.h"

namespace aimc::cli {

inline constexpr std::int64_t kMaxSweepPoints = 1000000;  // checkpoints x variations x repeats

struct SweepCheckpoint {
  std::string path;   // resolved against the experiment file's directory
  std::string label;  // default: the file stem
};

struct SweepField {
  std::string path;                   // "forward.out_noise"
  std::vector<nlohmann::json> values;  // as written
};

struct SweepExperiment {
  std::string file;  // the experiment file as given
  std::vector<SweepCheckpoint> checkpoints;
  // The base config (nullopt: the analog checkpoints' own; then vary is empty)
  // and how the file named it ("StandardHWATrainingPreset", "inline InferenceRPUConfig").
  std::optional<RPUConfig> rpu_config;
  std::string rpu_config_name;
  std::vector<SweepField> vary;
  std::vector<RPUConfig> configs;  // one per variation, validated (empty without rpu_config)
  std::vector<double> times;       // seconds after programming
  std::int64_t repeats = 3;
  std::uint64_t seed = 0;
  std::string dataset = "fashion-mnist";  // with a relative DIR resolved
  std::int64_t limit_test = 0;            // 0: all
  std::string results;                    // the JSON-lines results file
  std::string output;                     // prefix of PREFIX.json, PREFIX.csv, PREFIX.FIELD.png

  // The number of variations (1 without vary) and variation v's value of each field.
  std::int64_t variations() const;
  std::vector<nlohmann::json> values_of(std::int64_t v) const;
  // What identifies the experiment's numbers, with the configs resolved (no
  // paths, no outputs; the caller adds the checkpoints' and the test set's
  // content): compared field by field with a results file's.
  nlohmann::json identity() const;
};

// Reads and checks the experiment at path: ConfigError "experiment PATH:
// FIELD ..." naming the field and what is allowed (IoError when the file
// cannot be read).
SweepExperiment read_sweep_experiment(const std::string& path);

// The base config JSON with the dotted field set to value; ConfigError
// naming the path when a part before the last is not an object.
nlohmann::json with_field(nlohmann::json config, const std::string& dotted, const nlohmann::json& value);

}  // namespace aimc::cli
