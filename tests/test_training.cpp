// The training tool's learning-rate schedules (tools/training/trainer.h):
// make_scheduler's lr at given epochs for "step" (the epochs/3 default and
// explicit step_size/gamma, torch StepLR's meaning), "cosine" and "none", and
// the ConfigErrors for out-of-range step_size and gamma; an epoch stopped
// after a step and continued from its position (the same bits and loss as one
// pass), and the run state's JSON (round trip, errors naming the field).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <cstring>

#include "convert/conversion.h"
#include "convert/models.h"
#include "layers/config/presets.h"
#include "layers/tiles/analog_tile.h"
#include "engine/generator.h"
#include "layers/optim/adam.h"
#include "layers/optim/sgd.h"
#include "tools/training/run_state.h"
#include "tools/training/trainer.h"

using namespace aimc;
using training::TrainOptions;

namespace {

// The lr make_scheduler(opts) gives at epochs 0..n-1, read back from the optimizer.
std::vector<double> lrs(const TrainOptions& opts, std::int64_t n) {
  Tensor w = Tensor::from_vector(std::vector<double>{1.0}, {1}).set_requires_grad();
  SGD optimizer({w}, opts.lr);
  auto scheduler = training::make_scheduler(opts, optimizer);
  std::vector<double> out;
  for (std::int64_t e = 0; e < n; ++e) {
    if (scheduler) scheduler->set_epoch(e);
    out.push_back(optimizer.lr());
  }
  return out;
}

void check_lrs(const std::vector<double>& got, const std::vector<double>& expected) {
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-14));
}

std::string config_error(const TrainOptions& opts) {
  try {
    training::check_schedule_options(opts);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("step without step_size decays x0.1 every max(1, epochs/3) epochs") {
  TrainOptions o;
  o.schedule = "step";
  o.lr = 0.5;
  o.epochs = 9;  // step_size 3
  CHECK(training::effective_step_size(o) == 3);
  check_lrs(lrs(o, 9), {0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005, 0.005});
  o.epochs = 2;  // 2/3 = 0 -> 1: decays every epoch
  CHECK(training::effective_step_size(o) == 1);
  check_lrs(lrs(o, 2), {0.5, 0.05});
}

TEST_CASE("step with step_size and gamma is torch's StepLR: lr = base * gamma^floor(epoch / step_size)") {
  TrainOptions o;
  o.schedule = "step";
  o.lr = 0.08;
  o.epochs = 10;  // would be step 3 by default; step_size wins
  o.step_size = 2;
  o.gamma = 0.5;
  CHECK(training::effective_step_size(o) == 2);
  check_lrs(lrs(o, 6), {0.08, 0.08, 0.04, 0.04, 0.02, 0.02});
  o.step_size = 1;
  o.gamma = 0.25;
  check_lrs(lrs(o, 4), {0.08, 0.02, 0.005, 0.00125});
  o.gamma = 1.0;  // the upper end: a constant lr
  check_lrs(lrs(o, 3), {0.08, 0.08, 0.08});
  o.step_size = 20;  // longer than the run: never decays
  o.gamma = 0.1;
  check_lrs(lrs(o, 10), std::vector<double>(10, 0.08));
}

TEST_CASE("cosine and none are unchanged by the step fields") {
  TrainOptions o;
  o.lr = 1.0;
  o.epochs = 4;
  o.schedule = "cosine";  // (1 + cos(pi e / 4)) / 2
  check_lrs(lrs(o, 4), {1.0, 0.8535533905932737, 0.5, 0.14644660940672627});
  o.schedule = "none";
  check_lrs(lrs(o, 3), {1.0, 1.0, 1.0});
}

TEST_CASE("out-of-range step_size and gamma are ConfigErrors naming the flag and the range") {
  TrainOptions o;
  o.schedule = "step";
  CHECK(config_error(o).empty());
  o.step_size = -1;
  CHECK(config_error(o).find("--step-size") != std::string::npos);
  CHECK(config_error(o).find(">= 1") != std::string::npos);
  o.step_size = 0;
  for (double g : {0.0, -0.5, 1.0000001, 2.0, std::numeric_limits<double>::quiet_NaN(),
                   std::numeric_limits<double>::infinity()}) {
    o.gamma = g;
    const std::string msg = config_error(o);
    CHECK(msg.find("--gamma") != std::string::npos);
    CHECK(msg.find("(0, 1]") != std::string::npos);
    Tensor w = Tensor::from_vector(std::vector<double>{1.0}, {1}).set_requires_grad();
    SGD optimizer({w}, 0.1);
    CHECK_THROWS_AS(training::make_scheduler(o, optimizer), ConfigError);
  }
  o.gamma = 0.1;
  o.schedule = "linear";
  CHECK(config_error(o).find("known: none, step, cosine") != std::string::npos);
}

namespace {

// 40 random 28x28 samples with labels i % 10.
data::Dataset random_dataset() {
  Generator gen(11, 4);
  std::vector<std::int32_t> labels;
  for (int i = 0; i < 40; ++i) labels.push_back(i % 10);
  return {gen.uniform({40, 1, 28, 28}, 0, 1), Tensor::from_vector(labels, {40})};
}

bool same_state(const Module& a, const Module& b) {
  const auto sa = a.state_dict(), sb = b.state_dict();
  if (sa.empty() || sa.size() != sb.size()) return false;
  for (std::size_t i = 0; i < sa.size(); ++i) {
    const Tensor x = sa[i].second.contiguous(), y = sb[i].second.contiguous();
    if (x.shape() != y.shape() || x.dtype() != y.dtype() ||
        std::memcmp(x.raw_data(), y.raw_data(), x.numel() * dtype_size(x.dtype())) != 0)
      return false;
  }
  return true;
}

}  // namespace

TEST_CASE("an epoch stopped after a step and continued from its position equals one pass") {
  const data::Dataset data = random_dataset();
  // 40 samples in batches of 8: 5 steps; stop after 2 (the hook), continue with the rest.
  Generator g1(5, 1), g2(5, 1);
  auto whole = build_model("mlp", g1), split = build_model("mlp", g2);
  Adam o1(whole->parameters(), 0.01), o2(split->parameters(), 0.01);
  data::BatchLoader l1(data, 8, true, Generator(5, 2)), l2(data, 8, true, Generator(5, 2));
  const auto full = training::train_epoch(*whole, o1, l1, 1);

  training::EpochPosition at;
  std::int64_t calls = 0;
  const auto stop_after_two = [&](std::int64_t epoch, const training::EpochPosition& p) {
    CHECK(epoch == 1);
    ++calls;
    return p.next_batch == 2;
  };
  training::train_epoch(*split, o2, l2, 1, at, nullptr, stop_after_two);
  CHECK(calls == 2);
  CHECK(at.next_batch == 2);
  CHECK(at.samples == 16);
  CHECK_FALSE(same_state(*whole, *split));
  // A fresh loader (as after a restart) draws the same order for epoch 1.
  data::BatchLoader l3(data, 8, true, Generator(5, 2));
  const auto rest = training::train_epoch(*split, o2, l3, 1, at, nullptr, nullptr);
  CHECK(at.next_batch == 5);
  CHECK(at.samples == 40);
  CHECK(rest.train_loss == full.train_loss);  // the same sum in the same order: exact
  CHECK(same_state(*whole, *split));

  training::EpochPosition past;
  past.next_batch = 6;
  CHECK_THROWS_AS(training::train_epoch(*split, o2, l3, 1, past, nullptr, nullptr), ValueError);
}

TEST_CASE("the run state round-trips through JSON; a bad field is a ValueError naming it") {
  training::RunState s;
  s.options.model = "mlp";
  s.options.epochs = 3;
  s.options.lr = 0.1 / 3;  // not exact in decimal: the JSON must carry all 17 digits
  s.options.seed = 18446744073709551615ull;
  s.eval_each_epoch = true;
  s.checkpoint_every = 7;
  s.options.shards = 4;
  s.epoch = 1;
  s.position = {4, 9.123456789012345, 32};
  s.global_step = 13;
  s.history = nlohmann::json::array({{{"epoch", 1}, {"lr", 0.1}}});
  const nlohmann::json j = training::run_state_to_json(s);
  const training::RunState r = training::run_state_from_json(nlohmann::json::parse(j.dump()));
  CHECK(r.options.lr == s.options.lr);
  CHECK(r.options.seed == s.options.seed);
  CHECK(r.options.epochs == 3);
  CHECK(r.eval_each_epoch);
  CHECK(r.checkpoint_every == 7);
  CHECK(r.options.shards == 4);
  CHECK(r.epoch == 1);
  CHECK(r.position.next_batch == 4);
  CHECK(r.position.loss_sum == s.position.loss_sum);
  CHECK(r.position.samples == 32);
  CHECK(r.global_step == 13);
  CHECK(r.history == s.history);

  auto error = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json bad = j;
    edit(bad);
    try {
      training::run_state_from_json(bad);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(error([](auto& b) { b.erase("epoch"); }), Catch::Contains("no field 'epoch'"));
  CHECK_THAT(error([](auto& b) { b["epoch"] = 4; }), Catch::Contains("'epoch' 4 is past the run's 3 epochs"));
  CHECK_THAT(error([](auto& b) { b["batch"] = -1; }), Catch::Contains("'batch' must be an integer >= 0"));
  CHECK_THAT(error([](auto& b) { b["loss_sum"] = -1.0; }), Catch::Contains("'loss_sum' must be >= 0"));
  CHECK_THAT(error([](auto& b) { b["options"]["batch_size"] = 0; }), Catch::Contains("'batch_size'"));
  CHECK_THAT(error([](auto& b) { b["options"]["lr"] = "fast"; }), Catch::Contains("'lr' must be a finite number"));
  CHECK_THAT(error([](auto& b) { b["options"]["gamma"] = 2.0; }), Catch::Contains("gamma"));
  CHECK_THAT(error([](auto& b) { b["format"] = 2; }), Catch::Contains("format 2"));
  CHECK_THAT(error([](auto& b) { b["history"] = nlohmann::json::array(); }), Catch::Contains("'history'"));
  CHECK_THAT(error([](auto& b) { b["options"]["shards"] = 0; }), Catch::Contains("'shards' must be an integer >= 1"));
  CHECK_THAT(error([](auto& b) { b["options"]["shards"] = 3; }), Catch::Contains("'shards' 3 must divide 'batch_size' 64"));
  CHECK(error([](auto&) {}).empty());
  // States written before data-parallel training trained with one shard.
  nlohmann::json old = j;
  old["options"].erase("shards");
  CHECK(training::run_state_from_json(old).options.shards == 1);
}

TEST_CASE("data-parallel shards: their gradients add up to the batch's, their streams sit at step and shard") {
  const data::Dataset data = random_dataset();
  // 40 samples in batches of 8: 5 steps. SGD without momentum: the weights
  // move by lr times the gradient, so the shards' scaling shows directly.
  Generator g1(5, 1), g2(5, 1);
  auto whole = build_model("mlp", g1), sharded = build_model("mlp", g2);
  SGD o1(whole->parameters(), 0.1), o2(sharded->parameters(), 0.1);
  data::BatchLoader l1(data, 8, true, Generator(5, 2)), l2(data, 8, true, Generator(5, 2));
  training::EpochPosition a1, a2;
  const auto s1 = training::train_epoch(*whole, o1, l1, 0, a1, nullptr, nullptr, 1);
  const auto s4 = training::train_epoch(*sharded, o2, l2, 0, a2, nullptr, nullptr, 4);
  // Shards of 2 samples: the same sums added in another order. Float32
  // gradients of ~1e-2 summed over 8 samples differ by a few ulps per step;
  // over 5 steps the weights (|w| < 0.1) agree to 1e-6 absolute, while a
  // missing 1/S factor would move them by ~1e-3.
  CHECK(a2.samples == 40);
  CHECK(s4.train_loss == Approx(s1.train_loss).epsilon(1e-6));
  const auto w1 = whole->state_dict(), w4 = sharded->state_dict();
  double max_diff = 0, max_step = 0;
  Generator g3(5, 1);
  const auto init = build_model("mlp", g3)->state_dict();
  for (std::size_t i = 0; i < w1.size(); ++i) {
    const auto x = w1[i].second.to_vector(), y = w4[i].second.to_vector(), z = init[i].second.to_vector();
    for (std::size_t k = 0; k < x.size(); ++k) {
      max_diff = std::max(max_diff, double(std::abs(x[k] - y[k])));
      max_step = std::max(max_step, double(std::abs(x[k] - z[k])));
    }
  }
  CHECK(max_diff < 1e-6);
  CHECK(max_step > 1e-3);  // training moved the weights

  // Hardware-aware: after each step the tiles' streams sit at the next
  // step's first draw, 5 steps · 4 shards · 2^36 blocks.
  Generator g4(5, 1), g5(5, 3);
  auto analog = convert_to_analog(build_model("mlp", g4), make_rpu_config_preset("StandardHWATrainingPreset"), g5);
  Adam o3(analog->parameters(), 0.01);
  data::BatchLoader l3(data, 8, true, Generator(5, 2));
  training::EpochPosition a3;
  training::train_epoch(*analog, o3, l3, 0, a3, nullptr, nullptr, 4);
  REQUIRE_FALSE(analog->analog_tiles().empty());
  for (AnalogTile* t : analog->analog_tiles()) {
    CHECK(t->forward_counter() == 5u * 4u * Module::kDrawStride);
    CHECK(t->backward_counter() == 5u * 4u * Module::kDrawStride);
  }

  TrainOptions opts;
  opts.batch_size = 8;
  opts.shards = 3;
  CHECK_THROWS_WITH(training::check_shard_options(opts, 1), Catch::Contains("must divide the batch size"));
  opts.shards = 4;
  CHECK_NOTHROW(training::check_shard_options(opts, 2));
  CHECK_THROWS_WITH(training::check_shard_options(opts, 3), Catch::Contains("multiple of the 3 processes"));
  opts.shards = 0;
  CHECK_THROWS_AS(training::check_shard_options(opts, 1), ConfigError);

  // Pulsed tiles: each shard records its rows' x and d; the step applies
  // the whole batch's on every tile (test_data_parallel compares the bits).
  Generator g6(5, 1), g7(5, 3);
  auto pulsed = convert_to_analog(build_model("mlp", g6), make_rpu_config_preset("ReRamSBPreset"), g7);
  opts.shards = 2;
  opts.optimizer = "sgd";
  CHECK_NOTHROW(training::check_shard_options(opts, 1));
  auto pulsed_sgd = training::make_optimizer(opts, *pulsed);
  const std::vector<float> p0 = pulsed->analog_tiles()[0]->weight().to_vector();
  data::BatchLoader l4(data, 8, true, Generator(5, 2));
  training::EpochPosition a4;
  training::train_epoch(*pulsed, *pulsed_sgd, l4, 0, a4, nullptr, nullptr, 2);
  CHECK(a4.next_batch == 5);
  for (AnalogTile* t : pulsed->analog_tiles()) CHECK(t->pending_updates() == 0u);  // all applied
  const std::vector<float> p1 = pulsed->analog_tiles()[0]->weight().to_vector();
  std::size_t moved = 0;
  for (std::size_t k = 0; k < p0.size(); ++k) moved += p0[k] != p1[k];
  CHECK(moved > p0.size() / 100);  // the pulses moved the weights
}
