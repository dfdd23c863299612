// What `aimc drift` and `aimc sweep` share: the experiment of one chip
// (a checkpoint mapped onto analog tiles, programmed once with the chip's
// seed, drifted through the times and evaluated at each), its statistics
// over repeated chips, and the formatting of times and numbers.
//
// Repeat r of every model runs on the chip reseed_analog(seed_for(seed, r))
// with seed_for(S, r) = S * 1000003 + r + 1 (unsigned 64-bit arithmetic), so
// all models and configs of one run see the same chips (a paired
// comparison), whatever order or thread the repeat runs on.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "layers/config/rpu_config.h"
#include "layers/modules/module.h"
#include "tools/data/idx.h"

namespace aimc::cli {

inline constexpr double kMaxTime = 1e10;           // seconds (about 317 years)
inline constexpr std::size_t kMaxTimes = 1000;     // times of one run
inline constexpr std::int64_t kMaxRepeats = 1000;  // chips per model

// The chip seed of repeat r (see the file comment).
std::uint64_t seed_for(std::uint64_t seed, std::int64_t r);

// The shortest text that reads back as the same double.
std::string exact(double v);

// "1 s", "1 h", "1 day", "30 days", "1 year"; other values in seconds.
std::string human_time(double t);

struct Stats {
  std::vector<double> mean, std;
};

// Mean and sample standard deviation (ddof 1; 0 with one repeat) per time;
// acc[r][i] is repeat r at time i.
Stats statistics(const std::vector<std::vector<double>>& acc, std::size_t n_times);

// How a config that was given is named in messages about a checkpoint.
struct ConfigSource {
  std::string named;  // "--rpu-config X": "<named> does not fit analog checkpoint P"
  std::string drop;   // what to do instead: "drop --rpu-config to use the checkpoint's own config"
};

// One checkpoint of a run on one config: how to make a fresh model copy, and what it is.
struct DriftModel {
  std::string path, label, model, family;
  std::string config_name;  // what the user named (a preset, file or family), else the family
  std::function<std::shared_ptr<Module>()> make;
  std::vector<std::vector<double>> accuracy;  // [repeat][time]
  Stats stats;
};

// The checkpoint at path on `config` (nullptr: an analog checkpoint's own
// config; then a digital checkpoint is refused with `digital_message`).
// A digital checkpoint's weights are mapped onto the config's tiles with the
// conversion stream of `seed`; an analog one is rebuilt with the config and
// must fit it strictly (UsageError naming source otherwise). Makes one copy
// to fail early, on the calling thread, with a clean message.
DriftModel prepare_model(const std::string& path, const std::string& label, const RPUConfig* config,
                         const std::string& config_name, const ConfigSource& source,
                         const std::string& digital_message, std::uint64_t seed);

// One chip: programs a fresh copy of m with the chip of repeat r, then
// drifts it to each time (seconds, in order) and evaluates the test accuracy
// there. nullopt when stop() turned true before a time point (abandoned).
// device: where the copy runs (Module::to; its programming and drift go
// through the host inside each tile); chips on a GPU run one at a time.
std::optional<std::vector<double>> run_chip(const DriftModel& m, std::uint64_t seed, std::int64_t r,
                                            const std::vector<double>& times, const data::Dataset& test,
                                            const std::function<bool()>& stop, Device device = Device::cpu());

}  // namespace aimc::cli
