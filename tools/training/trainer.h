// Supervised training and evaluation loops for classification models, shared
// by the `aimc` command line and the benchmarks.
//
// Data-parallel training (TrainOptions::shards = S > 1; `mpirun -n K aimc
// train --shards S`, engine/communicator.h): every batch is cut into S fixed
// shards, shard s holding the batch's samples [s·n/S, (s+1)·n/S). S does not
// depend on the number of processes K (K must divide S): rank r runs the
// shards [r·S/K, (r+1)·S/K), one after another. The trained bits depend on
// S only, never on K: one process with --shards S (with or without mpirun)
// gives the same weights as 2 or 4 ranks. How:
//  - a shard's loss is the sum of its samples' cross entropies divided by
//    the batch size n (its mean times n_s/n), so the shards' gradients add
//    up to the batch's;
//  - every shard starts from the step's starting state (parameters and
//    buffers: forward passes change BatchNorm running statistics, the
//    noise-management running values and, in their first batches, learned
//    input ranges; the pulsed devices' hidden parameters, which only the
//    optimizer step changes, are not copied), and its random streams
//    (analog tiles' forward and backward noise, weight modifiers, dropout)
//    are positioned at draw
//    step·S + s (Module::position_streams), so a shard draws the same
//    numbers whichever rank runs it;
//  - the shards' gradients are gathered and added in shard order 0..S−1 in
//    float on every rank (Communicator::sum_in_shard_order, never
//    MPI_Allreduce, whose order is unspecified), and every rank takes the
//    same optimizer step;
//  - after the step, the buffers are those shard 0's forward left (the state
//    rank 0 broadcasts, as PyTorch's DistributedDataParallel broadcasts rank
//    0's buffers): BatchNorm normalises each shard by its own statistics and
//    its running statistics follow shard 0 (DDP without SyncBatchNorm).
//    Then every stream is positioned at the next step's first draw.
//  - pulsed analog training (tiles on pulsed devices, AnalogSGD): a pulsed
//    tile has no weight gradient; each shard's backward pass records the
//    tile's input x and error d for its rows (d already scaled by n_s/n, so
//    the rows' d of the whole batch). These are gathered in shard order on
//    every rank (Communicator::gather_in_shard_order), each tile's records
//    joined row-wise into the whole batch's (x, d) in sample order (a
//    convolution's im2col rows are sample-major too), and
//    every rank runs the same pulsed update from the same state (the
//    devices' update and post-update streams are tile state, advanced by the
//    update only, so they are never positioned per shard): the pulses are
//    those one pass over the whole batch with these x and d would give.
//    Digital parameters beside them (biases, digital layers) take the summed
//    gradients as above.
// S = 1 is the plain single-process loop (its bits unchanged by all this).
// What S changes: the forward and backward noise draws (per shard), the
// order in which the digital gradients add up, BatchNorm's statistics. A
// model whose passes draw nothing (noise-free periphery, no dropout) and
// has no digital parameters trains the same weights and device states, bit
// for bit, with any S when n/S and S are powers of two (so the n_s/n
// scaling of d is exact): the pulsed update then sees the plain loop's x
// and d. Only the forward and backward stream counters differ (positioned
// per shard).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/communicator.h"
#include "layers/config/rpu_config.h"
#include "layers/modules/module.h"
#include "layers/optim/lr_scheduler.h"
#include "layers/optim/optimizer.h"
#include "tools/data/idx.h"
#include "tools/data/loader.h"

namespace aimc::training {

struct TrainOptions {
  std::string model = "lenet5";
  std::string dataset = "fashion-mnist";
  std::int64_t epochs = 10;
  std::int64_t batch_size = 64;
  std::string optimizer = "adam";  // sgd | adam
  double lr = 2e-3;
  double momentum = 0.9;           // sgd only
  double weight_decay = 0.0;
  std::string schedule = "cosine";  // none | step (x gamma every step_size epochs) | cosine (to 0 over the run)
  std::int64_t step_size = 0;      // step only: epochs between decays (0: max(1, epochs/3))
  double gamma = 0.1;              // step only: lr multiplier at each decay, in (0, 1]
  std::uint64_t seed = 0;
  std::int64_t limit_train = 0;    // use only the first n samples (0: all)
  std::int64_t limit_test = 0;
  std::int64_t shards = 1;         // data-parallel shards of each batch (see above); 1: the plain loop
};

// Called after each batch: (epoch, batch, batches, running mean loss).
using ProgressFn = std::function<void(std::int64_t, std::int64_t, std::int64_t, double)>;

struct EpochStats {
  double train_loss = 0;  // mean cross entropy over the epoch's samples
  double seconds = 0;
};

// The learning rate when none is given: TrainOptions::lr (2e-3), or ten times
// that (0.02) for hardware-aware training on tiles that hold normalised
// weights (mapping.weight_scaling_omega > 0, as StandardHWATrainingPreset):
// such a tile stores W/s with s = max|W|/omega per column (s ≈ 0.05..0.3
// for LeNet-5), and the optimizer steps the tile weights, so a step of lr
// in tile units moves W by only lr·s. Measured on Fashion-MNIST, LeNet-5, 10
// epochs, Adam, seed 0: lr 0.002 → 0.866, 0.005 → 0.887, 0.02 → 0.899
// (digital: 0.909 at 0.002).
double default_learning_rate(const RPUConfig* rpu_config);

// Builds the optimizer named in opts ("sgd" or "adam") for the model's
// parameters; ConfigError otherwise. "sgd" on a model with tiles on pulsed
// devices is AnalogSGD (they learn by pulses); "adam" there is a ConfigError.
std::unique_ptr<Optimizer> make_optimizer(const TrainOptions& opts, Module& model);

// ConfigError for an unknown schedule, step_size < 0 or gamma outside (0, 1]
// (checked even when the schedule is not "step", so bad values never pass silently).
void check_schedule_options(const TrainOptions& opts);

// The per-epoch learning-rate schedule named in opts (nullptr for "none").
// "step" is torch's StepLR(step_size, gamma): lr = base·gamma^floor(epoch/step_size).
// Validates opts with check_schedule_options.
std::unique_ptr<LRScheduler> make_scheduler(const TrainOptions& opts, Optimizer& optimizer);

// The step schedule's epochs between decays: opts.step_size, or max(1, epochs/3) when 0.
std::int64_t effective_step_size(const TrainOptions& opts);

// Where an epoch stands: the next batch to train and the loss summed so far
// (sample-weighted), so an interrupted epoch continues with the same order
// and reports the same mean loss.
struct EpochPosition {
  std::int64_t next_batch = 0;
  double loss_sum = 0;
  std::int64_t samples = 0;
};

// Called after each optimizer step with the epoch and its position (next_batch
// = batches done); returning true ends the epoch there (an interruption).
using StepHook = std::function<bool(std::int64_t, const EpochPosition&)>;

// ConfigError unless the shards fit: shards >= 1, a multiple of `ranks`
// (the processes that share them), dividing batch_size.
void check_shard_options(const TrainOptions& opts, int ranks);

// One pass over the loader; returns the sample-weighted mean loss.
EpochStats train_epoch(Module& model, Optimizer& optimizer, data::BatchLoader& loader, std::int64_t epoch,
                       const ProgressFn& progress = nullptr);

// The rest of an epoch from `at` (updated after each step). Returns the
// epoch's mean loss when it ran to its end; when after_step stopped it,
// at.next_batch < loader.num_batches() tells so (the loss then covers the
// batches done).
// With shards > 1 each step is data-parallel over comm's ranks (see above;
// every rank calls it alike, and all of them stop when after_step stops one).
EpochStats train_epoch(Module& model, Optimizer& optimizer, data::BatchLoader& loader, std::int64_t epoch,
                       EpochPosition& at, const ProgressFn& progress, const StepHook& after_step,
                       std::int64_t shards = 1, const Communicator& comm = Communicator::world());

// Fraction of correctly classified samples, in eval mode, batches of batch_size;
// ValueError for an empty dataset.
double evaluate_accuracy(Module& model, const data::Dataset& data, std::int64_t batch_size = 1000);

}  // namespace aimc::training
