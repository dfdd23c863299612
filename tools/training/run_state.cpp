// The training run's state in a checkpoint (see run_state.h).
#include "tools/training/run_state.h"

#include <cmath>
#include <string>

#include "engine/error.h"

namespace aimc::training {
namespace {

constexpr int kFormat = 1;

const nlohmann::json& field(const nlohmann::json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) throw ValueError(std::string("training state: no field '") + name + "'");
  return *it;
}

std::int64_t int_field(const nlohmann::json& j, const char* name, std::int64_t min) {
  const auto& v = field(j, name);
  if (!v.is_number_integer() || v.get<std::int64_t>() < min)
    throw ValueError(std::string("training state: '") + name + "' must be an integer >= " + std::to_string(min) +
                     ", got " + v.dump());
  return v.get<std::int64_t>();
}

double number_field(const nlohmann::json& j, const char* name) {
  const auto& v = field(j, name);
  if (!v.is_number() || !std::isfinite(v.get<double>()))
    throw ValueError(std::string("training state: '") + name + "' must be a finite number, got " + v.dump());
  return v.get<double>();
}

std::string string_field(const nlohmann::json& j, const char* name) {
  const auto& v = field(j, name);
  if (!v.is_string()) throw ValueError(std::string("training state: '") + name + "' must be a string, got " + v.dump());
  return v.get<std::string>();
}

}  // namespace

nlohmann::json run_state_to_json(const RunState& s) {
  const TrainOptions& o = s.options;
  return {{"format", kFormat},
          {"options",
           {{"model", o.model}, {"dataset", o.dataset}, {"epochs", o.epochs}, {"batch_size", o.batch_size},
            {"optimizer", o.optimizer}, {"lr", o.lr}, {"momentum", o.momentum}, {"weight_decay", o.weight_decay},
            {"schedule", o.schedule}, {"step_size", o.step_size}, {"gamma", o.gamma}, {"seed", o.seed},
            {"limit_train", o.limit_train}, {"limit_test", o.limit_test}, {"eval_each_epoch", s.eval_each_epoch},
            {"checkpoint_every", s.checkpoint_every}, {"shards", o.shards}}},
          {"epoch", s.epoch},
          {"batch", s.position.next_batch},
          {"loss_sum", s.position.loss_sum},
          {"samples", s.position.samples},
          {"global_step", s.global_step},
          {"history", s.history}};
}

RunState run_state_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ValueError("training state must be a JSON object, got " + j.dump());
  const auto& format = field(j, "format");
  if (format != kFormat)
    throw ValueError("training state: format " + format.dump() + " is not known (this aimc reads format " +
                     std::to_string(kFormat) + ")");
  const auto& o = field(j, "options");
  if (!o.is_object()) throw ValueError("training state: 'options' must be an object, got " + o.dump());
  RunState s;
  s.options.model = string_field(o, "model");
  s.options.dataset = string_field(o, "dataset");
  s.options.epochs = int_field(o, "epochs", 1);
  s.options.batch_size = int_field(o, "batch_size", 1);
  s.options.optimizer = string_field(o, "optimizer");
  s.options.lr = number_field(o, "lr");
  if (!(s.options.lr > 0)) throw ValueError("training state: 'lr' must be > 0, got " + std::to_string(s.options.lr));
  s.options.momentum = number_field(o, "momentum");
  s.options.weight_decay = number_field(o, "weight_decay");
  s.options.schedule = string_field(o, "schedule");
  s.options.step_size = int_field(o, "step_size", 0);
  s.options.gamma = number_field(o, "gamma");
  const auto& seed = field(o, "seed");
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<std::int64_t>() >= 0))
    throw ValueError("training state: 'seed' must be an integer >= 0, got " + seed.dump());
  s.options.seed = seed.get<std::uint64_t>();
  s.options.limit_train = int_field(o, "limit_train", 0);
  s.options.limit_test = int_field(o, "limit_test", 0);
  const auto& eval = field(o, "eval_each_epoch");
  if (!eval.is_boolean()) throw ValueError("training state: 'eval_each_epoch' must be true or false, got " + eval.dump());
  s.eval_each_epoch = eval.get<bool>();
  s.checkpoint_every = int_field(o, "checkpoint_every", 0);
  // Data-parallel shards; states written before they existed trained with 1.
  s.options.shards = o.contains("shards") ? int_field(o, "shards", 1) : 1;
  if (s.options.batch_size % s.options.shards != 0)
    throw ValueError("training state: 'shards' " + std::to_string(s.options.shards) + " must divide 'batch_size' " +
                     std::to_string(s.options.batch_size));
  check_schedule_options(s.options);  // ConfigError naming the schedule field

  s.epoch = int_field(j, "epoch", 0);
  if (s.epoch > s.options.epochs)
    throw ValueError("training state: 'epoch' " + std::to_string(s.epoch) + " is past the run's " +
                     std::to_string(s.options.epochs) + " epochs");
  s.position.next_batch = int_field(j, "batch", 0);
  s.position.loss_sum = number_field(j, "loss_sum");
  if (s.position.loss_sum < 0)
    throw ValueError("training state: 'loss_sum' must be >= 0 (a sum of cross entropies), got " +
                     std::to_string(s.position.loss_sum));
  s.position.samples = int_field(j, "samples", 0);
  s.global_step = int_field(j, "global_step", 0);
  s.history = field(j, "history");
  if (!s.history.is_array() || std::int64_t(s.history.size()) != s.epoch)
    throw ValueError("training state: 'history' must be an array with one entry per finished epoch (" +
                     std::to_string(s.epoch) + ")");
  return s;
}

}  // namespace aimc::training
