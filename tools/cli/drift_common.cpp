// What drift and sweep share (see drift_common.h).
#include "tools/cli/drift_common.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <mutex>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "layers/tiles/tile_programming.h"
#include "tools/cli/commands.h"
#include "tools/training/trainer.h"

namespace aimc::cli {

std::uint64_t seed_for(std::uint64_t seed, std::int64_t r) {
  return seed * 1000003ULL + static_cast<std::uint64_t>(r) + 1ULL;
}

std::string exact(double v) {
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

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

DriftModel prepare_model(const std::string& path, const std::string& label, const RPUConfig* config,
                         const std::string& config_name, const ConfigSource& source,
                         const std::string& digital_message, std::uint64_t seed) {
  DriftModel m;
  m.path = path;
  m.label = label;
  Checkpoint ck = load_checkpoint(path);  // IoError (exit 2) when missing or garbled
  check_dataset_input(ck.description, path);
  m.model = ck.description.value("model", ck.model->type_name());
  // A named analog model has its config in the description; a model of one's
  // own (no model name) is analog when it has analog layers.
  const bool named_analog = ck.description.contains("rpu_config") && ck.description.contains("model");
  const std::string own_family =
      named_analog ? ck.description["rpu_config"].value("family", "?") : analog_family(*ck.model);
  const bool analog = !own_family.empty();
  if (!analog && config == nullptr) throw UsageError("checkpoint " + path + " is digital: " + digital_message);
  if (config == nullptr) {
    // The checkpoint's own analog model, exactly as saved.
    m.family = own_family;
    m.make = [path] { return load_checkpoint(path).model; };
  } else if (!named_analog) {
    // The digital weights (of a model of one's own: the exact weights of its
    // analog layers) mapped onto tiles of the given config, as `aimc eval --rpu-config`.
    m.family = config->family();
    m.make = [path, config = *config, seed] {
      Checkpoint c = load_checkpoint(path);
      Generator gen(seed, kAnalogConversionStream);
      return convert_to_analog(convert_to_digital(c.model, gen), config, gen);
    };
  } else {
    // The analog model rebuilt with the given config; its state must fit strictly.
    m.family = config->family();
    nlohmann::json description = ck.description;
    description["rpu_config"] = config->to_json();
    m.make = [path, description, source] {
      Checkpoint c = load_checkpoint(path);
      NamedTensors state;
      for (auto& [name, t] : c.model->state_dict())
        if (!is_tile_programming_key(name)) state.emplace_back(name, t);  // reprogrammed anyway
      Generator gen(0);  // initial values are overwritten by the state
      std::shared_ptr<Module> model = build_model_from_description(description, gen);
      try {
        model->load_state_dict(state, true);
      } catch (const Error& e) {
        throw UsageError(source.named + " does not fit analog checkpoint " + path +
                         ": the config's tile structure (tiles, their parameters and buffers) differs from the " +
                         "checkpoint's (" + e.what() + "); " + source.drop);
      }
      return model;
    };
  }
  m.config_name = config == nullptr ? m.family : config_name;
  m.make();  // fail early, on this thread, with a clean message
  return m;
}

std::optional<std::vector<double>> run_chip(const DriftModel& m, std::uint64_t seed, std::int64_t r,
                                            const std::vector<double>& times, const data::Dataset& test,
                                            const std::function<bool()>& stop, Device device) {
  // One chip at a time on a GPU (the repeats run on parallel threads).
  static std::mutex gpu;
  std::unique_lock<std::mutex> on_gpu(gpu, std::defer_lock);
  if (device.is_cuda()) on_gpu.lock();
  std::shared_ptr<Module> model = m.make();
  model->to(device);
  model->eval();
  model->reseed_analog(seed_for(seed, r));
  model->program_analog_weights();
  std::vector<double> accuracy(times.size());
  for (std::size_t i = 0; i < times.size(); ++i) {
    if (stop()) return std::nullopt;  // abandoned: it runs again on a rerun
    model->drift_analog_weights(times[i]);
    accuracy[i] = training::evaluate_accuracy(*model, test);
  }
  return accuracy;
}

}  // namespace aimc::cli
