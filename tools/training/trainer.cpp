// Training and evaluation loops (see trainer.h).
#include "tools/training/trainer.h"

#include <chrono>
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "layers/config/json_fields.h"
#include "layers/optim/adam.h"
#include "layers/optim/analog_sgd.h"
#include "layers/tiles/analog_tile.h"
#include "layers/optim/sgd.h"

namespace aimc::training {

double default_learning_rate(const RPUConfig* rpu_config) {
  const double digital = TrainOptions{}.lr;
  if (!rpu_config) return digital;
  const bool normalised = std::visit([](const auto& family) { return family.mapping.weight_scaling_omega > 0.f; },
                                     rpu_config->config);
  return normalised ? 10.0 * digital : digital;
}

std::unique_ptr<Optimizer> make_optimizer(const TrainOptions& opts, Module& model) {
  if (!(opts.lr > 0) || !std::isfinite(opts.lr))
    throw ConfigError("lr must be a positive number, got " + std::to_string(opts.lr));
  std::vector<AnalogTile*> pulsed;
  for (AnalogTile* t : model.analog_tiles())
    if (t->pulsed()) pulsed.push_back(t);
  if (opts.optimizer == "sgd") {
    SGDOptions o;
    o.momentum = opts.momentum;
    o.weight_decay = opts.weight_decay;
    if (pulsed.empty()) return std::make_unique<SGD>(model.parameters(), opts.lr, o);
    return std::make_unique<AnalogSGD>(model.parameters(), pulsed, opts.lr, o);
  }
  if (!pulsed.empty())
    throw ConfigError("optimizer '" + opts.optimizer + "': tiles on pulsed devices (TILE_CLASS_ANALOG) learn by "
                      "the pulsed update of AnalogSGD; use --optimizer sgd");
  if (opts.optimizer == "adam") {
    AdamOptions o;
    o.weight_decay = opts.weight_decay;
    return std::make_unique<Adam>(model.parameters(), opts.lr, o);
  }
  throw ConfigError("unknown optimizer '" + opts.optimizer + "' (known: sgd, adam)");
}

void check_schedule_options(const TrainOptions& opts) {
  if (opts.schedule != "none" && opts.schedule != "step" && opts.schedule != "cosine")
    throw ConfigError("unknown schedule '" + opts.schedule + "' (known: none, step, cosine)");
  if (opts.step_size < 0)
    throw ConfigError("step_size (--step-size) must be an integer >= 1 (0: epochs/3), got " +
                      std::to_string(opts.step_size));
  // gamma 1 is allowed (a constant lr, as torch accepts); 0 or less would zero or flip the lr.
  if (!(opts.gamma > 0 && opts.gamma <= 1))
    throw ConfigError("gamma (--gamma) must be in (0, 1], got " + config::format_number(opts.gamma));
}

std::int64_t effective_step_size(const TrainOptions& opts) {
  check_schedule_options(opts);
  return opts.step_size > 0 ? opts.step_size : std::max<std::int64_t>(1, opts.epochs / 3);
}

std::unique_ptr<LRScheduler> make_scheduler(const TrainOptions& opts, Optimizer& optimizer) {
  check_schedule_options(opts);
  if (opts.schedule == "step") return std::make_unique<StepLR>(optimizer, effective_step_size(opts), opts.gamma);
  if (opts.schedule == "cosine") return std::make_unique<CosineAnnealingLR>(optimizer, std::max<std::int64_t>(1, opts.epochs));
  return nullptr;  // "none"
}

EpochStats train_epoch(Module& model, Optimizer& optimizer, data::BatchLoader& loader, std::int64_t epoch,
                       const ProgressFn& progress) {
  EpochPosition at;
  return train_epoch(model, optimizer, loader, epoch, at, progress, nullptr);
}

EpochStats train_epoch(Module& model, Optimizer& optimizer, data::BatchLoader& loader, std::int64_t epoch,
                       EpochPosition& at, const ProgressFn& progress, const StepHook& after_step) {
  const auto start = std::chrono::steady_clock::now();
  model.train();
  loader.start_epoch(epoch);  // the order depends on (seed, epoch) only, so a resumed epoch sees the same
  const std::int64_t batches = loader.num_batches();
  if (at.next_batch < 0 || at.next_batch > batches)
    throw ValueError("epoch position: batch " + std::to_string(at.next_batch) + " out of [0, " +
                     std::to_string(batches) + "]");
  while (at.next_batch < batches) {
    const std::int64_t b = at.next_batch;
    data::Batch batch = loader.batch(b);
    optimizer.zero_grad();
    Tensor loss = cross_entropy(model(batch.images), batch.labels);
    const double value = loss.item();
    if (!std::isfinite(value))
      throw ValueError("training diverged: loss is " + std::to_string(value) + " at epoch " +
                       std::to_string(epoch + 1) + ", batch " + std::to_string(b + 1) + " (lower the lr)");
    loss.backward();
    optimizer.step();
    model.post_update_step();
    at.loss_sum += value * double(batch.labels.size(0));
    at.samples += batch.labels.size(0);
    at.next_batch = b + 1;
    if (progress) progress(epoch, b + 1, batches, at.loss_sum / double(at.samples));
    if (after_step && after_step(epoch, at)) break;
  }
  EpochStats s;
  s.train_loss = at.samples > 0 ? at.loss_sum / double(at.samples) : 0.0;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

double evaluate_accuracy(Module& model, const data::Dataset& data, std::int64_t batch_size) {
  if (batch_size < 1) throw ConfigError("evaluation batch size must be >= 1, got " + std::to_string(batch_size));
  // An accuracy of 0 samples is no measurement.
  if (data.size() == 0) throw ValueError("evaluate_accuracy: the dataset has no samples");
  NoGradGuard no_grad;
  model.eval();
  std::int64_t correct = 0;
  const std::int64_t n = data.size();
  for (std::int64_t lo = 0; lo < n; lo += batch_size) {
    const std::int64_t hi = std::min(n, lo + batch_size);
    Tensor logits = model(data.images.slice(0, lo, hi).contiguous());
    const auto predicted = argmax_rows(logits);
    const std::int32_t* labels = data.labels.data<std::int32_t>() + lo;
    for (std::int64_t i = 0; i < hi - lo; ++i) correct += predicted[i] == labels[i];
  }
  return double(correct) / double(n);
}

}  // namespace aimc::training
