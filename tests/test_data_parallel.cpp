// Data-parallel training (tools/training/trainer.h) in the library: run as
// one process (test `data_parallel`) and under mpirun with 2 and 4 ranks
// (`data_parallel_mpi2`, `data_parallel_mpi4`). Each rank trains the same
// model twice with 4 shards per batch, once over the world's ranks and once
// alone (Communicator::self()), and the two must agree bit for bit: a model
// with BatchNorm, dropout and analog layers (hardware-aware and lightning).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <vector>

#include "convert/conversion.h"
#include "engine/communicator.h"
#include "engine/generator.h"
#include "layers/config/presets.h"
#include "layers/config/weight_modifier.h"
#include "layers/modules/activation.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/dropout.h"
#include "layers/modules/flatten.h"
#include "layers/modules/linear.h"
#include "layers/modules/sequential.h"
#include "layers/optim/adam.h"
#include "tools/training/trainer.h"

using namespace aimc;

namespace {

// n random 28x28 samples with labels i % 10.
data::Dataset random_dataset(std::int64_t n = 48) {
  Generator gen(11, 4);
  std::vector<std::int32_t> labels;
  for (int i = 0; i < n; ++i) labels.push_back(i % 10);
  return {gen.uniform({n, 1, 28, 28}, 0, 1), Tensor::from_vector(labels, {n})};
}

// The analog configurations: "hwa", StandardHWATrainingPreset (input ranges
// learned and initialised from the data) with additive weight noise of the
// modifier (σ 0.05 of max|W|) drawn at every forward; "lightning", the
// lightning forward with output noise 0.02, an input range and the same modifier.
RPUConfig analog_config(const std::string& name) {
  WeightModifierParameter modifier;
  modifier.type = WeightModifierType::AddNormal;
  modifier.std_dev = 0.05f;
  if (name == "hwa") {
    InferenceRPUConfig c = standard_hwa_training_preset();
    c.modifier = modifier;
    return c;
  }
  TorchInferenceRPUConfig c;
  c.forward.out_noise = 0.02f;
  c.pre_post.input_range.enable = true;  // lightning's output noise needs an input range
  c.modifier = modifier;
  return c;
}

// Flatten, Linear 784→32, BatchNorm1d (unless batch_norm is false), ReLU,
// Dropout 0.25, Linear 32→10; the linear layers on analog tiles of
// analog_config(rpu) unless rpu is empty.
std::shared_ptr<Module> small_model(const std::string& rpu, bool batch_norm = true) {
  Generator init(3, 1);
  auto seq = std::make_shared<Sequential>();
  seq->add(std::make_shared<Flatten>()).add(std::make_shared<Linear>(784, 32, init));
  if (batch_norm) seq->add(std::make_shared<BatchNorm1d>(32));
  seq->add(std::make_shared<ReLU>())
      .add(std::make_shared<Dropout>(0.25, Generator(3, 9)))
      .add(std::make_shared<Linear>(32, 10, init));
  std::shared_ptr<Module> model = seq;
  if (!rpu.empty()) {
    Generator conversion(3, 3);
    model = convert_to_analog(model, analog_config(rpu), conversion);
  }
  return model;
}

std::string state_bytes(const Module& m) {
  std::string out;
  for (const auto& [name, t] : m.state_dict()) {
    const Tensor c = t.contiguous();
    out.append(static_cast<const char*>(c.raw_data()), std::size_t(c.numel()) * dtype_size(c.dtype()));
  }
  return out;
}

// Two epochs of batches of 8 in 4 shards over comm; returns the last epoch's loss.
double train(Module& model, const Communicator& comm, std::int64_t shards = 4, std::int64_t samples = 48) {
  const data::Dataset data = random_dataset(samples);
  Adam opt(model.parameters(), 0.01);
  data::BatchLoader loader(data, 8, true, Generator(3, 2));
  double loss = 0;
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    training::EpochPosition at;
    loss = training::train_epoch(model, opt, loader, epoch, at, nullptr, nullptr, shards, comm).train_loss;
  }
  return loss;
}

}  // namespace

TEST_CASE("4 shards over the world's ranks train the same bits as one process alone") {
  const Communicator& world = Communicator::world();
  // Digital; hardware-aware (learned input ranges initialised from the data,
  // the weight-noise modifier); the lightning forward (its own output-noise stream).
  for (const std::string rpu : {"", "hwa", "lightning"}) {
    INFO((rpu.empty() ? "digital" : rpu) << ", " << world.size() << " ranks");
    auto alone = small_model(rpu), shared = small_model(rpu);
    REQUIRE(state_bytes(*alone) == state_bytes(*shared));
    const double l1 = train(*alone, Communicator::self());
    const double lk = train(*shared, world);
    CHECK(lk == l1);
    CHECK(state_bytes(*shared) == state_bytes(*alone));
    // The shards shape the bits: 2 shards train differently (BatchNorm
    // statistics over 4 samples, other dropout and noise draws).
    auto two = small_model(rpu);
    train(*two, Communicator::self(), 2);
    CHECK(state_bytes(*two) != state_bytes(*alone));
  }
}

TEST_CASE("a last batch smaller than the shards: empty shards (shard 0 among them) add nothing, on any ranks") {
  // 50 samples in batches of 8: the last batch holds 2, cut into 4 shards
  // [0, 0), [0, 1), [1, 1), [1, 2): shards 0 and 2 are empty, 1 and 3 hold one
  // sample (no BatchNorm, which needs 2 samples in training, as in PyTorch).
  const Communicator& world = Communicator::world();
  for (const std::string rpu : {"", "hwa"}) {
    INFO((rpu.empty() ? "digital" : rpu) << ", " << world.size() << " ranks");
    auto alone = small_model(rpu, false), shared = small_model(rpu, false);
    const double l1 = train(*alone, Communicator::self(), 4, 50);
    const double lk = train(*shared, world, 4, 50);
    CHECK(std::isfinite(l1));
    CHECK(lk == l1);
    CHECK(state_bytes(*shared) == state_bytes(*alone));
  }
}

TEST_CASE("after a sharded step BatchNorm's running mean is the one shard 0's samples left") {
  // Flatten then BatchNorm1d(784): its running mean after one step is
  // momentum · (mean of shard 0's samples) = 0.1 · mean of the batch's first
  // 2 of 8 samples (running mean 0 before); float32, 2 samples: 1e-7 apart.
  Generator init(3, 1);
  auto seq = std::make_shared<Sequential>();
  auto bn = std::make_shared<BatchNorm1d>(784);
  seq->add(std::make_shared<Flatten>()).add(bn).add(std::make_shared<Linear>(784, 10, init));
  const data::Dataset data = random_dataset();
  Adam opt(seq->parameters(), 0.01);
  data::BatchLoader loader(data, 8, true, Generator(3, 2));
  training::EpochPosition at;
  training::train_epoch(*seq, opt, loader, 0, at, nullptr, [](std::int64_t, const training::EpochPosition&) {
    return true;  // one step
  }, 4, Communicator::world());
  REQUIRE(at.next_batch == 1);
  loader.start_epoch(0);
  const Tensor x = loader.batch(0).images.contiguous();
  const float* p = x.data<float>();
  const auto running = bn->state_dict()[2].second.to_vector();  // weight, bias, running_mean, ...
  REQUIRE(bn->state_dict()[2].first == "running_mean");
  REQUIRE(running.size() == 784);
  for (std::size_t k = 0; k < 784; ++k) {
    const double shard0 = 0.5 * (double(p[k]) + double(p[784 + k]));
    CHECK(running[k] == Approx(0.1 * shard0).margin(1e-6));
  }
}
