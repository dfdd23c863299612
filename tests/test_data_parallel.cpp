// Data-parallel training (tools/training/trainer.h) in the library: run as
// one process (test `data_parallel`) and under mpirun with 2 and 4 ranks
// (`data_parallel_mpi2`, `data_parallel_mpi4`). Each rank trains the same
// model twice with 4 shards per batch, once over the world's ranks and once
// alone (Communicator::self()), and the two must agree bit for bit: a model
// with BatchNorm, dropout and analog layers (hardware-aware, lightning and
// pulsed training on SingleRPUConfig tiles with AnalogSGD).
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <memory>
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
#include "engine/runtime.h"
#include "layers/optim/adam.h"
#include "layers/optim/analog_sgd.h"
#include "layers/tiles/analog_tile.h"
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
// lightning forward with output noise 0.02, an input range and the same
// modifier; "pulsed", SingleRPUConfig (ConstantStepDevice, aihwkit's noisy
// forward and backward passes), the biases digital (trained by SGD beside
// the pulses); "pulsed_exact", the same with noise-free passes; "tiki-taka",
// TikiTakaReRamSBPreset (a compound: two devices per weight and transfers
// between them after the update).
RPUConfig analog_config(const std::string& name) {
  if (name == "tiki-taka") return make_rpu_config_preset("TikiTakaReRamSBPreset");
  if (name == "pulsed" || name == "pulsed_exact") {
    SingleRPUConfig c;
    if (name == "pulsed_exact") c.forward.is_perfect = c.backward.is_perfect = true;
    return c;
  }
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

// The names of the state entries whose bytes differ between a and b (same architecture).
std::vector<std::string> differing_entries(const Module& a, const Module& b) {
  const NamedTensors x = a.state_dict(), y = b.state_dict();
  REQUIRE(x.size() == y.size());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const Tensor u = x[i].second.contiguous(), v = y[i].second.contiguous();
    const std::size_t n = std::size_t(u.numel()) * dtype_size(u.dtype());
    if (u.numel() != v.numel() || std::memcmp(u.raw_data(), v.raw_data(), n) != 0) out.push_back(x[i].first);
  }
  return out;
}

std::vector<AnalogTile*> pulsed_tiles(Module& m) {
  std::vector<AnalogTile*> out;
  for (AnalogTile* t : m.analog_tiles())
    if (t->pulsed()) out.push_back(t);
  return out;
}

// Two epochs of batches of 8 in 4 shards over comm; returns the last epoch's
// loss. Adam, or AnalogSGD (lr 0.1) for a model with tiles on pulsed devices.
double train(Module& model, const Communicator& comm, std::int64_t shards = 4, std::int64_t samples = 48) {
  const data::Dataset data = random_dataset(samples);
  const std::vector<AnalogTile*> pulsed = pulsed_tiles(model);
  std::unique_ptr<Optimizer> opt;
  if (pulsed.empty()) opt = std::make_unique<Adam>(model.parameters(), 0.01);
  else opt = std::make_unique<AnalogSGD>(model.parameters(), pulsed, 0.1);
  data::BatchLoader loader(data, 8, true, Generator(3, 2));
  double loss = 0;
  for (std::int64_t epoch = 0; epoch < 2; ++epoch) {
    training::EpochPosition at;
    loss = training::train_epoch(model, *opt, loader, epoch, at, nullptr, nullptr, shards, comm).train_loss;
  }
  return loss;
}

}  // namespace

TEST_CASE("4 shards over the world's ranks train the same bits as one process alone") {
  const Communicator& world = Communicator::world();
  // Digital; hardware-aware (learned input ranges initialised from the data,
  // the weight-noise modifier); the lightning forward (its own output-noise stream).
  // Pulsed training: every rank updates its tiles with the whole batch's x and d.
  for (const std::string rpu : {"", "hwa", "lightning", "pulsed", "tiki-taka"}) {
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
  for (const std::string rpu : {"", "hwa", "pulsed"}) {
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

TEST_CASE("pulsed training in 4 shards: the same bits for 1, 2 and 8 threads, and the tiles learn") {
  // One process (the world's ranks are compared above): SingleRPUConfig
  // tiles, digital biases, BatchNorm and dropout.
  const Communicator& self = Communicator::self();
  auto init = small_model("pulsed");
  std::string reference;
  for (int threads : {1, 2, 8}) {
    INFO(threads << " threads");
    set_num_threads(threads);
    auto m = small_model("pulsed");
    train(*m, self);
    if (reference.empty()) reference = state_bytes(*m);
    CHECK(state_bytes(*m) == reference);
    if (threads > 1) continue;
    // The pulses moved the first tile's weights (32 x 392: 784 inputs on 2 tiles) in steps of
    // ConstantStepDevice's dw_min 0.001 (±30% device-to-device spread)
    // over 12 steps of lr 0.1: most weights move by a few steps.
    const std::vector<float> w0 = pulsed_tiles(*init)[0]->weight().to_vector();
    const std::vector<float> w1 = pulsed_tiles(*m)[0]->weight().to_vector();
    std::size_t moved = 0;
    for (std::size_t k = 0; k < w0.size(); ++k) moved += std::abs(w1[k] - w0[k]) > 5e-4f;
    INFO("moved " << moved << " of " << w0.size());
    CHECK(moved > w0.size() / 2);
  }
  set_num_threads(0);
}

TEST_CASE("noise-free pulsed tiles without digital parameters: 2 and 4 shards train the plain loop's bits") {
  // Flatten, 784→32 and 32→10 on SingleRPUConfig tiles with perfect forward
  // and backward passes, no biases: nothing draws per shard and nothing is
  // summed, and with batches of 8 the scalings n_s/n (1/2, 1/4) are exact,
  // so each step's pulsed update sees the plain loop's x and d bit for bit,
  // and the update streams are the tiles' own. Gathering only some shards'
  // rows, or updating shard by shard with the update streams positioned per
  // shard, would change the pulses.
  auto model = [] {
    Generator init(3, 1), conversion(3, 3);
    auto seq = std::make_shared<Sequential>();
    seq->add(std::make_shared<Flatten>())
        .add(std::make_shared<Linear>(784, 32, false, init))
        .add(std::make_shared<ReLU>())
        .add(std::make_shared<Linear>(32, 10, false, init));
    return convert_to_analog(seq, analog_config("pulsed_exact"), conversion);
  };
  auto plain = model();
  REQUIRE(pulsed_tiles(*plain).size() == 3);  // 784 inputs on 2 tiles (mapping.max_input_size 512), 32 on 1
  const std::string start = state_bytes(*plain);
  train(*plain, Communicator::self(), 1);
  REQUIRE(state_bytes(*plain) != start);  // trained
  // Everything but the forward and backward stream counters (positioned
  // per shard, Module::position_streams) is the same: the weights and every
  // device state (the pulse, noise and post-update counters among them).
  std::vector<std::string> counters;
  for (const auto& [name, t] : plain->state_dict())
    if (name.ends_with("_forward_counter") || name.ends_with("_backward_counter")) counters.push_back(name);
  REQUIRE(counters.size() == 6);
  for (std::int64_t shards : {2, 4}) {
    INFO(shards << " shards");
    auto m = model();
    train(*m, Communicator::self(), shards);
    CHECK(differing_entries(*m, *plain) == counters);
    // 2 epochs of 6 steps: the streams sit at the 13th step's first draw.
    for (AnalogTile* t : pulsed_tiles(*m)) CHECK(t->forward_counter() == 12u * std::uint64_t(shards) * Module::kDrawStride);
  }
  auto shared = model();
  train(*shared, Communicator::world(), 4);
  CHECK(differing_entries(*shared, *plain) == counters);
}

TEST_CASE("a pulsed model whose loss turns non-finite: every rank reports the divergence, not a tile's refusal") {
  // The last layer's digital bias holds a NaN: every shard's logits and loss
  // are NaN. The shards skip their backward passes (which would hand a NaN
  // error d to the last pulsed tile, whose record_update refuses it), and
  // every rank throws the divergence after the gathers, as the plain loop.
  const Communicator& world = Communicator::world();
  const data::Dataset data = random_dataset(16);
  auto m = small_model("pulsed", false);
  Tensor bias = m->parameters().back();
  REQUIRE(bias.shape() == Shape{10});
  bias.data<float>()[3] = std::nanf("");
  AnalogSGD opt(m->parameters(), pulsed_tiles(*m), 0.1);
  data::BatchLoader loader(data, 16, false, Generator(3, 2));
  training::EpochPosition at;
  CHECK_THROWS_WITH(training::train_epoch(*m, opt, loader, 0, at, nullptr, nullptr, 4, world),
                    Catch::Contains("training diverged: loss is nan at epoch 1, batch 1"));
  CHECK(at.next_batch == 0);
}
