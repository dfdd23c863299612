// Training and evaluation loops (see trainer.h).
#include "tools/training/trainer.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <unordered_set>

#include "engine/autograd.h"
#include "engine/communicator.h"
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

void check_shard_options(const TrainOptions& opts, int ranks) {
  const std::string s = std::to_string(opts.shards);
  if (opts.shards < 1) throw ConfigError("shards (--shards) must be an integer >= 1, got " + s);
  if (opts.shards % ranks != 0)
    throw ConfigError("shards (--shards) " + s + " must be a multiple of the " + std::to_string(ranks) +
                      " processes (mpirun -n) that share them" +
                      (opts.shards == 1 ? std::string(" (give --shards, e.g. 4: the trained bits depend on it, not on "
                                                      "the number of processes)")
                                        : std::string()));
  if (opts.batch_size % opts.shards != 0)
    throw ConfigError("shards (--shards) " + s + " must divide the batch size (--batch-size " +
                      std::to_string(opts.batch_size) + ")");
}

namespace {

// The state a shard's passes may change: the model's state_dict (parameters
// then buffers) without the pulsed devices' hidden parameters, which only the
// optimizer step's update changes (and which, per weight, can be ten times
// the weights' size: not copied per shard).
NamedTensors pass_state(Module& model) {
  std::unordered_set<const Storage*> device_state;
  for (AnalogTile* t : model.analog_tiles())
    for (const auto& [name, v] : t->hidden_parameters()) device_state.insert(v.storage().get());
  NamedTensors out;
  for (auto& entry : model.state_dict())
    if (!device_state.contains(entry.second.storage().get())) out.push_back(std::move(entry));
  return out;
}

// pass_state as bytes.
std::string state_bytes(Module& model) {
  std::string out;
  for (const auto& [name, t] : pass_state(model)) {
    const Tensor c = t.detach().to(Device::cpu()).contiguous();
    out.append(static_cast<const char*>(c.raw_data()), std::size_t(c.numel()) * dtype_size(c.dtype()));
  }
  return out;
}

// Sets pass_state from state_bytes of the same model.
void load_state_bytes(Module& model, const std::string& bytes) {
  NamedTensors values;
  std::size_t at = 0;
  for (const auto& [name, t] : pass_state(model)) {
    const std::size_t n = std::size_t(t.numel()) * dtype_size(t.dtype());
    if (at + n > bytes.size()) throw ValueError("data-parallel training: a model state of the wrong size");
    Tensor v = Tensor::empty(t.shape(), t.dtype());
    std::memcpy(v.raw_data(), bytes.data() + at, n);
    at += n;
    values.emplace_back(name, v);
  }
  if (at != bytes.size()) throw ValueError("data-parallel training: a model state of the wrong size");
  model.load_state_dict(values, /*strict=*/false);
}

// The model's tiles on pulsed devices, in module order (the same on every rank).
std::vector<AnalogTile*> pulsed_tiles(Module& model) {
  std::vector<AnalogTile*> out;
  for (AnalogTile* t : model.analog_tiles())
    if (t->pulsed()) out.push_back(t);
  return out;
}

void append_u64(std::string& out, std::uint64_t v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); }

std::uint64_t read_u64(const std::string& in, std::size_t& at) {
  if (at + sizeof(std::uint64_t) > in.size()) throw ValueError("data-parallel training: truncated pulsed updates");
  std::uint64_t v;
  std::memcpy(&v, in.data() + at, sizeof v);
  at += sizeof v;
  return v;
}

// The (x, d) one shard's backward passes recorded on each pulsed tile, as
// bytes: per tile the number of records, then per record its rows and the
// float32 values of x [rows, in] and d [rows, out].
std::string pack_updates(const std::vector<AnalogTile*>& tiles) {
  std::string out;
  for (const AnalogTile* t : tiles) {
    append_u64(out, t->recorded_updates().size());
    for (const auto& [x, d] : t->recorded_updates()) {
      append_u64(out, std::uint64_t(x.size(0)));
      for (const Tensor& v : {x, d}) {
        const Tensor c = v.to(Device::cpu()).contiguous();
        out.append(static_cast<const char*>(c.raw_data()), std::size_t(c.numel()) * sizeof(float));
      }
    }
  }
  return out;
}

// Records on each pulsed tile the whole batch's (x, d) from every shard's
// pack_updates, given in shard order: record k of the batch is record k of
// each shard, their rows concatenated in shard order (the batch's sample
// order, as one pass over the whole batch records them). Empty shards
// (a last batch smaller than the shards) recorded nothing and add nothing.
void record_batch_updates(const std::vector<AnalogTile*>& tiles, const std::vector<std::string>& shards) {
  std::vector<std::size_t> at(shards.size(), 0);
  for (AnalogTile* t : tiles) {
    const std::int64_t in = t->in_size(), out = t->out_size();
    // Per shard: its records' (rows, offset of x in its bytes).
    std::vector<std::vector<std::pair<std::int64_t, std::size_t>>> records(shards.size());
    std::size_t count = 0;
    for (std::size_t s = 0; s < shards.size(); ++s) {
      const std::uint64_t k = read_u64(shards[s], at[s]);
      for (std::uint64_t r = 0; r < k; ++r) {
        const std::int64_t rows = std::int64_t(read_u64(shards[s], at[s]));
        const std::size_t bytes = std::size_t(rows * (in + out)) * sizeof(float);
        if (at[s] + bytes > shards[s].size()) throw ValueError("data-parallel training: truncated pulsed updates");
        records[s].emplace_back(rows, at[s]);
        at[s] += bytes;
      }
      if (k == 0) continue;
      if (count != 0 && k != count)
        throw ValueError("data-parallel training: shard " + std::to_string(s) + " recorded " + std::to_string(k) +
                         " pulsed updates on tile " + std::to_string(t->tile_id()) + ", an earlier shard " +
                         std::to_string(count));
      count = k;
    }
    for (std::size_t r = 0; r < count; ++r) {
      std::int64_t rows = 0;
      for (const auto& rec : records)
        if (!rec.empty()) rows += rec[r].first;
      Tensor x = Tensor::empty({rows, in}), d = Tensor::empty({rows, out});
      float* px = x.data<float>();
      float* pd = d.data<float>();
      for (std::size_t s = 0; s < shards.size(); ++s) {
        if (records[s].empty()) continue;
        const auto [n, offset] = records[s][r];
        const char* src = shards[s].data() + offset;
        std::memcpy(px, src, std::size_t(n * in) * sizeof(float));
        std::memcpy(pd, src + std::size_t(n * in) * sizeof(float), std::size_t(n * out) * sizeof(float));
        px += n * in;
        pd += n * out;
      }
      t->record_update(x, d);
    }
  }
  for (std::size_t s = 0; s < shards.size(); ++s)
    if (at[s] != shards[s].size()) throw ValueError("data-parallel training: pulsed updates of the wrong size");
}

// One optimizer step on `batch` cut into `shards` shards (trainer.h); `step`
// counts the steps of the run. Returns the sum of the batch's per-sample losses.
double sharded_step(Module& model, Optimizer& optimizer, const data::Batch& batch, std::uint64_t step,
                    std::int64_t shards, const Communicator& comm) {
  const auto [first, last] = comm.shard_range(shards);
  // The streams' positions, (step·S + s)·2^36 Philox blocks, live in int64
  // tile counters (checkpoints): at most 2^27 shard passes in a run.
  if ((step + 1) * std::uint64_t(shards) >= (std::uint64_t(1) << 27))
    throw ValueError("data-parallel training: step " + std::to_string(step + 1) + " with " + std::to_string(shards) +
                     " shards is past the 2^27 shard passes the random streams can be positioned for");
  const std::int64_t n = batch.labels.size(0);
  const std::vector<Tensor>& params = optimizer.params();
  std::size_t numel = 0;
  for (const Tensor& p : params) numel += std::size_t(p.numel());

  const std::string start = state_bytes(model);
  std::string after_first;                      // the state shard 0's forward left
  std::vector<std::vector<float>> grads;        // per shard: the gradients, then one has-gradient flag per parameter
  std::vector<std::string> losses;              // per shard: its samples' loss sum (a double)
  const std::vector<AnalogTile*> pulsed = pulsed_tiles(model);
  std::vector<std::string> updates;             // per shard: the (x, d) its pulsed tiles recorded
  for (std::int64_t s = first; s < last; ++s) {
    if (s != first) load_state_bytes(model, start);
    model.position_streams(step * std::uint64_t(shards) + std::uint64_t(s));
    optimizer.zero_grad();
    const std::int64_t lo = s * n / shards, hi = (s + 1) * n / shards;
    double loss_sum = 0;
    if (hi > lo) {
      Tensor loss = cross_entropy(model(batch.images.slice(0, lo, hi).contiguous()),
                                  batch.labels.slice(0, lo, hi).contiguous());
      loss_sum = loss.item() * double(hi - lo);
      // The shard's part of the batch mean: its mean times n_s / n.
      loss = loss * (double(hi - lo) / double(n));
      // A diverged shard is reported after the gathers, on every rank alike
      // (its backward would meet the non-finite values first, e.g. in a
      // pulsed tile's record_update, on its rank alone).
      if (std::isfinite(loss_sum)) loss.backward();
    }
    std::vector<float> g;
    g.reserve(numel + params.size());
    for (const Tensor& p : params) {
      const Tensor grad = p.grad();
      if (grad.defined()) {
        const std::vector<float> v = grad.to_vector();
        g.insert(g.end(), v.begin(), v.end());
      } else {
        g.insert(g.end(), std::size_t(p.numel()), 0.f);
      }
    }
    for (const Tensor& p : params) g.push_back(p.grad().defined() ? 1.f : 0.f);
    grads.push_back(std::move(g));
    losses.emplace_back(reinterpret_cast<const char*>(&loss_sum), sizeof loss_sum);
    if (!pulsed.empty()) updates.push_back(pack_updates(pulsed));
    if (s == 0) after_first = state_bytes(model);
  }

  const std::vector<float> sum = comm.sum_in_shard_order(grads);
  double loss_sum = 0;
  for (const std::string& l : comm.allgather_lists(losses)) {
    double v;
    std::memcpy(&v, l.data(), sizeof v);
    loss_sum += v;
  }
  if (!std::isfinite(loss_sum)) return loss_sum;  // the caller reports the divergence (on every rank alike)
  std::vector<std::string> batch_updates;
  if (!pulsed.empty()) batch_updates = comm.gather_in_shard_order(updates);
  comm.broadcast(after_first, 0);
  load_state_bytes(model, after_first);
  model.position_streams((step + 1) * std::uint64_t(shards));
  optimizer.zero_grad();
  std::size_t at = 0;
  for (std::size_t i = 0; i < params.size(); ++i) {
    Tensor p = params[i];
    const std::size_t k = std::size_t(p.numel());
    if (sum[numel + i] > 0.f) {
      std::vector<float> v(sum.begin() + std::ptrdiff_t(at), sum.begin() + std::ptrdiff_t(at + k));
      p.set_grad(Tensor::from_vector(v, p.shape()).to(p.device()));
    }
    at += k;
  }
  // Every rank updates its pulsed tiles alike: the whole batch's (x, d),
  // from the same state (the devices' update streams are in it), so the
  // same pulses.
  if (!pulsed.empty()) record_batch_updates(pulsed, batch_updates);
  optimizer.step();
  model.post_update_step();
  return loss_sum;
}

}  // namespace

EpochStats train_epoch(Module& model, Optimizer& optimizer, data::BatchLoader& loader, std::int64_t epoch,
                       const ProgressFn& progress) {
  EpochPosition at;
  return train_epoch(model, optimizer, loader, epoch, at, progress, nullptr);
}

EpochStats train_epoch(Module& model, Optimizer& optimizer, data::BatchLoader& loader, std::int64_t epoch,
                       EpochPosition& at, const ProgressFn& progress, const StepHook& after_step,
                       std::int64_t shards, const Communicator& comm) {
  const auto start = std::chrono::steady_clock::now();
  if (shards < 1 || shards % comm.size() != 0)
    throw ConfigError("shards must be a multiple of the " + std::to_string(comm.size()) + " processes, got " +
                      std::to_string(shards));
  model.train();
  loader.start_epoch(epoch);  // the order depends on (seed, epoch) only, so a resumed epoch sees the same
  const std::int64_t batches = loader.num_batches();
  if (at.next_batch < 0 || at.next_batch > batches)
    throw ValueError("epoch position: batch " + std::to_string(at.next_batch) + " out of [0, " +
                     std::to_string(batches) + "]");
  while (at.next_batch < batches) {
    const std::int64_t b = at.next_batch;
    data::Batch batch = loader.batch(b);
    auto diverged = [&](double value) {
      return ValueError("training diverged: loss is " + std::to_string(value) + " at epoch " +
                        std::to_string(epoch + 1) + ", batch " + std::to_string(b + 1) + " (lower the lr)");
    };
    if (shards > 1) {
      // The step's number in the run: every epoch has the same batches.
      const std::uint64_t step = std::uint64_t(epoch * batches + b);
      const double sum = sharded_step(model, optimizer, batch, step, shards, comm);
      if (!std::isfinite(sum)) throw diverged(sum / double(batch.labels.size(0)));
      at.loss_sum += sum;
    } else {
      optimizer.zero_grad();
      // The batch goes where the model is (a no-op on the CPU).
      const Device device = model.device();
      Tensor loss = cross_entropy(model(batch.images.to(device)), batch.labels.to(device));
      const double value = loss.item();
      if (!std::isfinite(value)) throw diverged(value);
      loss.backward();
      optimizer.step();
      model.post_update_step();
      at.loss_sum += value * double(batch.labels.size(0));
    }
    at.samples += batch.labels.size(0);
    at.next_batch = b + 1;
    if (progress) progress(epoch, b + 1, batches, at.loss_sum / double(at.samples));
    if (after_step) {
      bool stop = after_step(epoch, at);
      // One rank's stop (a signal) stops them all at the same step.
      if (comm.size() > 1)
        for (const std::string& s : comm.allgather(stop ? "1" : "0")) stop = stop || s == "1";
      if (stop) break;
    }
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
  const Device device = model.device();  // each batch goes where the model is
  for (std::int64_t lo = 0; lo < n; lo += batch_size) {
    const std::int64_t hi = std::min(n, lo + batch_size);
    Tensor logits = model(data.images.slice(0, lo, hi).contiguous().to(device));
    const auto predicted = argmax_rows(logits);
    const std::int32_t* labels = data.labels.data<std::int32_t>() + lo;
    for (std::int64_t i = 0; i < hi - lo; ++i) correct += predicted[i] == labels[i];
  }
  return double(correct) / double(n);
}

}  // namespace aimc::training
