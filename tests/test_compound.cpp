// Compound devices (unit cells) and UnitCellRPUConfig: VectorUnitCell and its
// update policies, ReferenceUnitCell, TransferCompound (Tiki-Taka).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "kernels/cpu/parallel.h"
#include "layers/config/compound_presets.h"
#include "layers/config/presets.h"
#include "layers/devices/tile_device.h"
#include "layers/modules/analog_linear.h"
#include "layers/optim/analog_sgd.h"
#include "layers/tiles/analog_tile.h"
#include "pulsed_test_util.h"

using namespace aimc;
using nlohmann::json;

namespace {

using test::exact_constant_step;
using test::update_once;

std::unique_ptr<AnalogTile> make_tile(std::int64_t out, std::int64_t in, const json& device, const UpdateParameters& up,
                                      std::uint64_t seed = 7) {
  return test::make_pulsed_tile(out, in, device, up, seed);
}

// The state entry `name` of a tile (shares its storage).
Tensor entry(const AnalogTile& t, const std::string& name) {
  const Tensor* e = t.state().find(name);
  REQUIRE(e != nullptr);
  return *e;
}

std::vector<float> values(const AnalogTile& t, const std::string& name) { return entry(t, name).to_vector(); }

void set_entry(const AnalogTile& t, const std::string& name, const std::vector<float>& v) {
  Tensor e = entry(t, name);
  REQUIRE(std::int64_t(v.size()) == e.numel());
  std::copy(v.begin(), v.end(), e.data<float>());
}

UpdateParameters no_management(int bl = 10) {
  UpdateParameters up;
  up.update_management = false;
  up.update_bl_management = false;
  up.desired_bl = bl;
  return up;
}

json vector_cell(const std::string& policy, int n, int first = 0) {
  json devices = json::array();
  for (int k = 0; k < n; ++k) devices.push_back(exact_constant_step(0.01f, 1000.f));
  return {{"type", "VectorUnitCell"}, {"unit_cell_devices", devices}, {"update_policy", policy},
          {"first_update_idx", first}};
}

// Perfect transfer reads, MEAN_COUNT transfer pulses: a transfer of value v
// with lr_t = 0.1 onto ConstantStep steps of 0.01 is exactly round(10·v) steps.
json exact_transfer_compound() {
  UpdateParameters up = no_management(10);
  up.pulse_type = PulseType::MeanCount;
  json perfect_json = RPUConfig(SingleRPUConfig{}).to_json()["forward"];
  perfect_json["is_perfect"] = true;
  return {{"type", "TransferCompound"},
          {"unit_cell_devices", {exact_constant_step(0.01f), exact_constant_step(0.01f)}},
          {"transfer_forward", perfect_json},
          {"transfer_update", up.to_json()}};
}

}  // namespace

TEST_CASE("VectorUnitCell: W = sum of gamma_k W_k", "[compound]") {
  json cell = vector_cell("ALL", 2);
  cell["gamma_vec"] = {0.5, 2.0};
  auto tile = make_tile(2, 3, cell, no_management());
  AnalogTile& t = *tile;
  const std::vector<float> w0{0.1f, -0.2f, 0.3f, 0.4f, 0.f, -0.6f}, w1{0.05f, 0.1f, -0.1f, 0.2f, 0.3f, 0.f};
  set_entry(t, "0_weights", w0);
  set_entry(t, "1_weights", w1);
  update_once(t, {0.f, 0.f, 0.f}, {0.f, 0.f}, 0.1f);  // no pulses; W recomputed
  const auto w = t.weight().to_vector();
  for (std::size_t k = 0; k < w.size(); ++k) CHECK(w[k] == Approx(0.5 * w0[k] + 2.0 * w1[k]).margin(1e-7));
  // Setting the weights writes W to every device: W' = (0.5 + 2)·W.
  t.weight().fill_(0.2);
  t.weights_set();
  CHECK(values(t, "0_weights") == std::vector<float>(6, 0.2f));
  CHECK(values(t, "1_weights") == std::vector<float>(6, 0.2f));
  CHECK(t.weight().to_vector()[0] == Approx(0.5).margin(1e-7));
  // Default gamma_vec: 1/n each, so setting and reading agree.
  auto plain = make_tile(2, 3, vector_cell("ALL", 3), no_management());
  plain->weight().fill_(0.3);
  plain->weights_set();
  CHECK(plain->weight().to_vector()[4] == Approx(0.3).margin(1e-7));
}

TEST_CASE("VectorUnitCell: each update policy pulses the devices it names", "[compound]") {
  // Known answer per sample: dw_min 0.01, BL 10 without management, lr 0.11,
  // x = d = 1: all 10 slots fire, the chosen device moves by exactly −0.10.
  auto run = [](const json& cell, int samples) {
    auto tile = make_tile(1, 1, cell, no_management());
    update_once(*tile, std::vector<float>(samples, 1.f), std::vector<float>(samples, 1.f), 0.11f);
    std::vector<float> w;
    for (int k = 0; k < 3; ++k) w.push_back(values(*tile, std::to_string(k) + "_weights")[0]);
    w.push_back(tile->weight().to_vector()[0]);
    return w;
  };
  SECTION("ALL: every device, one sample") {
    const auto w = run(vector_cell("ALL", 3), 1);
    for (int k = 0; k < 3; ++k) CHECK(w[k] == Approx(-0.1).margin(1e-6));
    CHECK(w[3] == Approx(-0.1).margin(1e-6));
  }
  SECTION("SINGLE_FIXED: only first_update_idx") {
    const auto w = run(vector_cell("SINGLE_FIXED", 3, 1), 3);
    CHECK(w[0] == 0.f);
    CHECK(w[1] == Approx(-0.3).margin(1e-6));
    CHECK(w[2] == 0.f);
    CHECK(w[3] == Approx(-0.1).margin(1e-6));  // gamma 1/3
  }
  SECTION("SINGLE_SEQUENTIAL: first sample to first_update_idx + 1") {
    // Samples go to devices 1, 2, 0, 1.
    const auto w = run(vector_cell("SINGLE_SEQUENTIAL", 3, 0), 4);
    CHECK(w[0] == Approx(-0.1).margin(1e-6));
    CHECK(w[1] == Approx(-0.2).margin(1e-6));
    CHECK(w[2] == Approx(-0.1).margin(1e-6));
  }
  SECTION("SINGLE_RANDOM: each device a third of the samples") {
    // 3000 samples: a device's share has std sqrt(1/3·2/3/3000) = 0.0086; 5σ = 0.043.
    const auto w = run(vector_cell("SINGLE_RANDOM", 3, 0), 3000);
    double total = 0;
    for (int k = 0; k < 3; ++k) {
      const double share = -w[k] / 0.1 / 3000.0;
      CHECK(share == Approx(1.0 / 3.0).margin(0.043));
      total += -w[k] / 0.1;
    }
    // Every sample went to exactly one device (float sums of 0.01 steps drift by < 0.5 step).
    CHECK(total == Approx(3000).margin(0.5));
  }
  SECTION("ALL: the devices see the same coincidences") {
    // Stochastic trains (default management): exact devices end bit-identical.
    json cell = vector_cell("ALL", 2);
    auto tile = make_tile(4, 5, cell, UpdateParameters{});
    Generator g(3, 0);
    update_once(*tile, g.uniform({6, 5}).to_vector(), g.normal({6, 4}, 0., 1.).to_vector(), 0.05f);
    const auto a = values(*tile, "0_weights"), b = values(*tile, "1_weights");
    CHECK(a == b);
    double moved = 0;
    for (float v : a) moved += std::abs(v);
    CHECK(moved > 0.);
  }
}

TEST_CASE("ReferenceUnitCell: W = W_0 - W_1, only W_0 learns", "[compound]") {
  const json cell{{"type", "ReferenceUnitCell"}, {"unit_cell_devices", {exact_constant_step(0.01f)}}};
  auto tile = make_tile(1, 1, cell, no_management());
  AnalogTile& t = *tile;
  set_entry(t, "1_weights", {0.2f});
  update_once(t, {1.f}, {1.f}, 0.11f);
  CHECK(values(t, "0_weights")[0] == Approx(-0.1).margin(1e-6));
  CHECK(values(t, "1_weights")[0] == 0.2f);
  CHECK(t.weight().to_vector()[0] == Approx(-0.3).margin(1e-6));
  // One device given: duplicated; the JSON shows both, with gamma_vec [1, -1].
  const json j = make_device_model(cell)->to_json();
  CHECK(j["unit_cell_devices"].size() == 2);
  CHECK(j["gamma_vec"] == json({1.0, -1.0}));
  CHECK(j["update_policy"] == "SINGLE_FIXED");
}

TEST_CASE("OneSidedUnitCell: W = W_1 - W_0, both devices only move up", "[compound]") {
  const json cell{{"type", "OneSidedUnitCell"}, {"unit_cell_devices", {exact_constant_step(0.01f)}}};
  SECTION("setting the weights splits them into g+ = max(W, 0) and g- = max(-W, 0)") {
    auto tile = make_tile(2, 3, cell, no_management());
    tile->weight().copy_(Tensor::from_vector(std::vector<float>{0.3f, -0.2f, 0.f, 0.1f, 0.f, -0.5f}, {2, 3}));
    tile->weights_set();
    CHECK(values(*tile, "1_weights") == std::vector<float>{0.3f, 0.f, 0.f, 0.1f, 0.f, 0.f});
    CHECK(values(*tile, "0_weights") == std::vector<float>{0.f, 0.2f, 0.f, 0.f, 0.f, 0.5f});
    CHECK(tile->weight().to_vector() == std::vector<float>{0.3f, -0.2f, 0.f, 0.1f, 0.f, -0.5f});
  }
  SECTION("a down pulse moves g- up, an up pulse moves g+ up") {
    // Known answer per sample: 10 pulses of 0.01 (BL 10, lr 0.11, |x| = |d| = 1).
    auto tile = make_tile(1, 1, cell, no_management());
    update_once(*tile, {1.f}, {1.f}, 0.11f);
    CHECK(values(*tile, "0_weights")[0] == Approx(0.1).margin(1e-6));
    CHECK(values(*tile, "1_weights")[0] == 0.f);
    CHECK(tile->weight().to_vector()[0] == Approx(-0.1).margin(1e-6));
    update_once(*tile, {-1.f}, {1.f}, 0.11f);
    CHECK(values(*tile, "0_weights")[0] == Approx(0.1).margin(1e-6));
    CHECK(values(*tile, "1_weights")[0] == Approx(0.1).margin(1e-6));
    CHECK(tile->weight().to_vector()[0] == Approx(0.0).margin(1e-6));
  }
  SECTION("a second device entry is ignored: both are the first") {
    json two = cell;
    two["unit_cell_devices"] = {exact_constant_step(0.01f), exact_constant_step(0.05f)};
    auto tile = make_tile(1, 1, two, no_management());
    CHECK(values(*tile, "1_dwmin_up")[0] == Approx(0.01));
  }
}

TEST_CASE("OneSidedUnitCell: refresh resets a saturating pair and writes the difference as aihwkit", "[compound]") {
  // Devices with steps 0.1 and bounds ±1, reset to exactly 0; perfect reads;
  // the refresh writes with MEAN_COUNT, BL 10 and lr 1, so A = B = 1 and a
  // difference v is round(10·v) steps of 0.1, exactly v. One sample with
  // refresh_every 1 (units of the mini-batch) triggers one refresh.
  json device = exact_constant_step(0.1f, 1.f);
  device["reset_std"] = 0;
  UpdateParameters refresh_update = no_management(10);
  refresh_update.pulse_type = PulseType::MeanCount;
  json perfect = RPUConfig(SingleRPUConfig{}).to_json()["forward"];
  perfect["is_perfect"] = true;
  const json cell{{"type", "OneSidedUnitCell"},  {"unit_cell_devices", {device}}, {"refresh_every", 1},
                  {"refresh_forward", perfect},  {"refresh_update", refresh_update.to_json()}};
  auto tile = make_tile(1, 4, cell, no_management());
  AnalogTile& t = *tile;
  // Elements: (g+, g-) = (0.9, 0.6) refresh (0.9 > 0.75, 0.6 > 0.25): both
  // reset to 0, then the difference 0.3 written onto g+ with aihwkit 1.1.0's
  // sign (subtracted): g+ −0.3; (0.5, 0.2) stays (0.5 < 0.75); (0.3, 0.8)
  // refresh: g- −0.5, g+ 0; (0.2, 0.9) stays (0.2 < 0.25). aihwkit 1.1.0
  // (AnalogTile with this config) gives exactly these g+, g- and W.
  set_entry(t, "1_weights", {0.9f, 0.5f, 0.3f, 0.2f});
  set_entry(t, "0_weights", {0.6f, 0.2f, 0.8f, 0.9f});
  update_once(t, {0.f, 0.f, 0.f, 0.f}, {0.f}, 0.1f);
  const auto plus = values(t, "1_weights"), minus = values(t, "0_weights"), w = t.weight().to_vector();
  const std::vector<float> e_plus{-0.3f, 0.5f, 0.f, 0.2f}, e_minus{0.f, 0.2f, -0.5f, 0.9f};
  for (int k = 0; k < 4; ++k) {
    CHECK(plus[k] == Approx(e_plus[k]).margin(1e-6));
    CHECK(minus[k] == Approx(e_minus[k]).margin(1e-6));
    CHECK(w[k] == Approx(e_plus[k] - e_minus[k]).margin(1e-6));
  }
  CHECK(entry(t, "refresh_count").item() == 1);
}

TEST_CASE("TransferCompound: a transfer moves a column of A into C", "[compound]") {
  // Tile 2x3, fully hidden (gamma 0: W = C). One sample per update with
  // transfer_every 1 in units of the mini-batch: one column per update,
  // columns 0, 1, 2, 0, ... SGD lr 0.1 scales the transfer: C[:, c] += 0.1·A[:, c].
  auto tile = make_tile(2, 3, exact_transfer_compound(), no_management());
  AnalogTile& t = *tile;
  const std::vector<float> a{0.3f, 0.1f, -0.2f, 0.5f, -0.4f, 0.0f};
  set_entry(t, "0_weights", a);
  auto step = [&] { update_once(t, {0.f, 0.f, 0.f}, {0.f, 0.f}, 0.1f); };  // no SGD pulses
  step();
  std::vector<float> expect{0.03f, 0.f, 0.f, 0.05f, 0.f, 0.f};
  auto check_c = [&](const std::vector<float>& e) {
    const auto c = values(t, "1_weights"), w = t.weight().to_vector();
    for (std::size_t k = 0; k < e.size(); ++k) {
      CHECK(c[k] == Approx(e[k]).margin(1e-6));
      CHECK(w[k] == c[k]);
    }
  };
  check_c(expect);
  CHECK(values(t, "0_weights") == a);  // reading does not change A
  step();
  expect = {0.03f, 0.01f, 0.f, 0.05f, -0.04f, 0.f};
  check_c(expect);
  step();
  expect = {0.03f, 0.01f, -0.02f, 0.05f, -0.04f, 0.f};
  check_c(expect);
  step();  // back to column 0
  expect = {0.06f, 0.01f, -0.02f, 0.10f, -0.04f, 0.f};
  check_c(expect);
  CHECK(entry(t, "update_count").item() == 4);
  CHECK(entry(t, "current_slice").to_vector()[0] == 1.f);

  SECTION("transfer_every 2 with 3 samples per batch: every ceil(2·3) = 6 samples") {
    json cell = exact_transfer_compound();
    cell["transfer_every"] = 2;
    auto t2 = make_tile(2, 3, cell, no_management());
    set_entry(*t2, "0_weights", a);
    update_once(*t2, std::vector<float>(9, 0.f), std::vector<float>(6, 0.f), 0.1f);
    CHECK(values(*t2, "1_weights") == std::vector<float>(6, 0.f));
    update_once(*t2, std::vector<float>(9, 0.f), std::vector<float>(6, 0.f), 0.1f);
    CHECK(values(*t2, "1_weights")[0] == Approx(0.03).margin(1e-6));
    CHECK(values(*t2, "1_weights")[1] == 0.f);
  }
  SECTION("n_reads_per_transfer 2: two columns per transfer, wrapping around") {
    json cell = exact_transfer_compound();
    cell["n_reads_per_transfer"] = 2;
    auto t2 = make_tile(2, 3, cell, no_management());
    set_entry(*t2, "0_weights", a);
    update_once(*t2, {0.f, 0.f, 0.f}, {0.f, 0.f}, 0.1f);
    update_once(*t2, {0.f, 0.f, 0.f}, {0.f, 0.f}, 0.1f);  // columns 2, 0
    const auto c = values(*t2, "1_weights");
    const std::vector<float> e{0.06f, 0.01f, -0.02f, 0.10f, -0.04f, 0.f};
    for (std::size_t k = 0; k < e.size(); ++k) CHECK(c[k] == Approx(e[k]).margin(1e-6));
  }
}

TEST_CASE("TransferCompound: four updates as aihwkit 1.1.0 computes them", "[compound]") {
  // MEAN_COUNT pulses (deterministic), BL 10, no management, step 0.01
  // devices, fast_lr 0.05, SGD lr 0.1, perfect transfer reads; x = [1, 0.5,
  // −0.3], d = [0.2, −0.4] four times. A moves by round-offs of −0.05·d·xᵀ:
  // [−0.01, 0, 0; 0.02, 0.01, −0.01] per update; columns 0, 1, 2, 0 are
  // transferred, 0.1·A[:, c] each, and only the last transfer (0.1·0.08 =
  // 0.008, rounded to one step) reaches C. aihwkit 1.1.0 (AnalogTile with
  // this UnitCellRPUConfig) prints the same A and C after each update.
  json perfect = RPUConfig(SingleRPUConfig{}).to_json()["forward"];
  perfect["is_perfect"] = true;
  UpdateParameters up = no_management(10);
  up.pulse_type = PulseType::MeanCount;
  const json cell{{"type", "TransferCompound"},
                  {"unit_cell_devices", {exact_constant_step(0.01f, 1.f), exact_constant_step(0.01f, 1.f)}},
                  {"transfer_forward", perfect},
                  {"transfer_update", up.to_json()},
                  {"fast_lr", 0.05}};
  auto tile = make_tile(2, 3, cell, up);
  const std::vector<float> a1{-0.01f, 0.f, 0.f, 0.02f, 0.01f, -0.01f};
  for (int k = 1; k <= 4; ++k) {
    update_once(*tile, {1.f, 0.5f, -0.3f}, {0.2f, -0.4f}, 0.1f);
    const auto a = values(*tile, "0_weights"), c = values(*tile, "1_weights");
    for (int e = 0; e < 6; ++e) {
      CHECK(a[e] == Approx(k * a1[e]).margin(1e-6));
      CHECK(c[e] == Approx(k == 4 && e == 3 ? 0.01 : 0.0).margin(1e-6));
    }
  }
}

TEST_CASE("BufferedTransferCompound: the transfer goes through a float buffer", "[compound]") {
  // Step 0.01 devices, perfect reads, SGD lr 0.1: h = H + 0.1·A[:, c],
  // n = trunc(h/0.01) capped at ±1 (desired_bl 1); C moves n steps (one pulse
  // of 0.01: lr = step·g = 0.01, BL 1, probabilities 1); H keeps
  // momentum·h when n ≠ 0 (forget_buffer), else h. aihwkit 1.1.0 moves C by
  // the same [0.01, 0, 0; −0.01, 0, 0] in the first section's case.
  json perfect = RPUConfig(SingleRPUConfig{}).to_json()["forward"];
  perfect["is_perfect"] = true;
  json cell{{"type", "BufferedTransferCompound"},
            {"unit_cell_devices", {exact_constant_step(0.01f), exact_constant_step(0.01f)}},
            {"transfer_forward", perfect}};
  auto run = [&](const json& c) {
    auto tile = make_tile(2, 3, c, no_management());
    set_entry(*tile, "0_weights", {0.35f, 0.f, 0.f, -0.25f, 0.f, 0.f});
    update_once(*tile, {0.f, 0.f, 0.f}, {0.f, 0.f}, 0.1f);
    return std::pair{values(*tile, "1_weights"), values(*tile, "transfer_buffer_0")};
  };
  SECTION("forget_buffer") {
    const auto [c, h] = run(cell);
    CHECK(c[0] == Approx(0.01).margin(1e-6));
    CHECK(c[3] == Approx(-0.01).margin(1e-6));
    CHECK(h[0] == Approx(0.1 * 0.035).margin(1e-7));   // momentum 0.1 (the default)
    CHECK(h[3] == Approx(-0.1 * 0.025).margin(1e-7));
    CHECK(c[1] == 0.f);
  }
  SECTION("keep the remainder: h − (1 − momentum)·n·thr") {
    json c2 = cell;
    c2["forget_buffer"] = false;
    c2["unit_cell_devices"][0] = exact_constant_step(0.01f);
    const auto [c, h] = run(c2);
    CHECK(c[0] == Approx(0.01).margin(1e-6));
    CHECK(h[0] == Approx(0.035 - 0.9 * 0.01).margin(1e-7));
    CHECK(h[3] == Approx(-0.025 + 0.9 * 0.01).margin(1e-7));
  }
  SECTION("below the threshold the buffer accumulates") {
    json c2 = cell;
    auto tile = make_tile(1, 1, c2, no_management());
    set_entry(*tile, "0_weights", {0.04f});
    update_once(*tile, {0.f}, {0.f}, 0.1f);  // h = 0.004 < 0.01
    CHECK(values(*tile, "1_weights")[0] == 0.f);
    update_once(*tile, {0.f}, {0.f}, 0.1f);  // 0.008
    CHECK(values(*tile, "1_weights")[0] == 0.f);
    update_once(*tile, {0.f}, {0.f}, 0.1f);  // 0.012: one step, H = 0.0012
    CHECK(values(*tile, "1_weights")[0] == Approx(0.01).margin(1e-6));
    CHECK(values(*tile, "transfer_buffer_0")[0] == Approx(0.0012).margin(1e-7));
  }
}

TEST_CASE("ChoppedTransferCompound: choppers flip the gradient and the transfer", "[compound]") {
  // Tile 2x3, step 0.01 devices, perfect reads, in_chop_prob 1 (every
  // transfer flips its column's chopper), fast_lr 0.11 with BL 10 (one
  // sample x = e_0, d = e_0 moves A[0, 0] by exactly ∓0.10), SGD lr 0.05:
  // the buffer scale is 0.05/0.01 = 5. One column per sample.
  //   sample 1: A00 = −0.1; transfer col 0: H00 = 5·(−0.1) = −0.5; chopper 0 on
  //   sample 2: A00 = 0 (flipped pulse); col 1; sample 3: A00 = 0.1; col 2
  //   sample 4: A00 = 0.2; col 0 with chopper on: h = −0.5 − 5·0.2 = −1.5,
  //             n = −1: C00 = −0.01, H00 = 0; chopper 0 off
  // aihwkit 1.1.0 (AnalogTile, this UnitCellRPUConfig) gives A00 = 0.2 and C00 = −0.01 too.
  json perfect = RPUConfig(SingleRPUConfig{}).to_json()["forward"];
  perfect["is_perfect"] = true;
  const json cell{{"type", "ChoppedTransferCompound"},
                  {"unit_cell_devices", {exact_constant_step(0.01f), exact_constant_step(0.01f)}},
                  {"transfer_forward", perfect},
                  {"in_chop_prob", 1.0},
                  {"fast_lr", 0.11}};
  auto tile = make_tile(2, 3, cell, no_management());
  AnalogTile& t = *tile;
  update_once(t, {1.f, 0.f, 0.f}, {1.f, 0.f}, 0.05f);
  CHECK(values(t, "0_weights")[0] == Approx(-0.1).margin(1e-6));
  CHECK(values(t, "transfer_buffer")[0] == Approx(-0.5).margin(1e-5));
  CHECK(entry(t, "in_chopper").to_vector() == std::vector<float>{1.f, 0.f, 0.f});
  const std::vector<float> x3{1.f, 0.f, 0.f, 1.f, 0.f, 0.f, 1.f, 0.f, 0.f}, d3{1.f, 0.f, 1.f, 0.f, 1.f, 0.f};
  update_once(t, x3, d3, 0.05f);  // samples 2-4 in one mini-batch
  CHECK(values(t, "0_weights")[0] == Approx(0.2).margin(1e-6));
  CHECK(values(t, "1_weights")[0] == Approx(-0.01).margin(1e-6));
  CHECK(t.weight().to_vector()[0] == Approx(-0.01).margin(1e-6));
  CHECK(values(t, "transfer_buffer")[0] == Approx(0.0).margin(1e-6));
  CHECK(entry(t, "in_chopper").to_vector() == std::vector<float>{0.f, 1.f, 1.f});
  CHECK(entry(t, "transfer_counter").item() == 1);

  SECTION("auto_scale: running maxima set the pulse lr fast_lr·BL·g/(m_x·m_d)") {
    json c2 = cell;
    c2["auto_scale"] = true;
    c2["fast_lr"] = 0.1;
    c2["in_chop_prob"] = 0.0;
    auto t2 = make_tile(2, 3, c2, UpdateParameters{});  // desired_bl 31
    // Two samples: the first sets m = (0.5, 0.2); the second moves them by
    // τ = (1 − 0.99)/2 towards (1.0, 0.4).
    update_once(*t2, {0.5f, -0.1f, 0.f, 1.f, 0.f, 0.f}, {0.2f, 0.f, -0.4f, 0.f}, 0.05f);
    const auto m = values(*t2, "auto_scale_m");
    CHECK(m[0] == Approx(0.995 * 0.5 + 0.005 * 1.0).epsilon(1e-6));
    CHECK(m[1] == Approx(0.995 * 0.2 + 0.005 * 0.4).epsilon(1e-6));
    CHECK(values(*t2, "count_lr")[0] == Approx(0.1 * 31 * 0.01 / (m[0] * m[1])).epsilon(1e-5));
  }
}

TEST_CASE("TransferCompound: fast_lr sets A's pulse learning rate (aihwkit's quirk)", "[compound]") {
  // 64x64 tile, x = d = 0.1, ConstantStep dw_min 0.001, default update
  // management. fast_lr 1: k = 1·0.1·0.1/0.001 = 10, BL 10, probabilities 1:
  // every element moves exactly 10 steps, ΔA = −0.0100, whatever the SGD lr.
  auto run = [](float fast_lr, float lr, int samples) {
    json cell{{"type", "TransferCompound"},
              {"unit_cell_devices", {exact_constant_step(0.001f), exact_constant_step(0.001f)}},
              {"transfer_every", 0},
              {"fast_lr", fast_lr}};
    auto tile = make_tile(64, 64, cell, UpdateParameters{});
    update_once(*tile, std::vector<float>(64 * samples, 0.1f), std::vector<float>(64 * samples, 0.1f), lr);
    double s = 0;
    for (float v : values(*tile, "0_weights")) s += v;
    CHECK(values(*tile, "1_weights") == std::vector<float>(64 * 64, 0.f));  // no transfer
    return s / (64.0 * 64.0);
  };
  CHECK(run(1.f, 0.01f, 1) == Approx(-0.01).margin(1e-6));
  CHECK(run(1.f, 0.1f, 1) == Approx(-0.01).margin(1e-6));
  // fast_lr 0: the SGD lr 0.01; k = 0.1, BL 1, p = sqrt(0.1) per line, mean
  // ΔA = −lr·x·d = −1e-4 per sample. Over 200 samples the relative std of the
  // mean of the row/column products is about 0.26/sqrt(200) = 0.018; 5σ = 9 %.
  CHECK(run(0.f, 0.01f, 200) / 200.0 == Approx(-1e-4).epsilon(0.09));
}

TEST_CASE("Compounds: state entries and a restored tile continues bit for bit", "[compound][checkpoint]") {
  json cell = exact_transfer_compound();
  cell["unit_cell_devices"] = {json{{"type", "ConstantStepDevice"}}, json{{"type", "ConstantStepDevice"}}};
  cell["transfer_update"] = UpdateParameters{}.to_json();
  for (const char* name : {"0_weights", "0_max_bound", "0_min_bound", "0_dwmin_up", "0_dwmin_down", "0_decay_scales",
                           "0_diffusion_rates", "0_reset_bias", "0_pulse_counter", "1_weights", "1_max_bound",
                           "1_dwmin_up", "1_pulse_counter", "update_count", "current_slice", "read_counter"}) {
    auto t = make_tile(3, 4, cell, UpdateParameters{});
    INFO(name);
    CHECK(t->state().find(name) != nullptr);
  }
  // Sub-devices draw their own device-to-device values.
  auto t = make_tile(3, 4, cell, UpdateParameters{});
  CHECK(values(*t, "0_dwmin_up") != values(*t, "1_dwmin_up"));

  Generator g(5, 0);
  const auto x1 = g.uniform({8, 4}).to_vector(), d1 = g.normal({8, 3}, 0., 1.).to_vector();
  const auto x2 = g.uniform({8, 4}).to_vector(), d2 = g.normal({8, 3}, 0., 1.).to_vector();
  // A OneSidedUnitCell refreshed every sample (noisy AVERAGE_ABS_MAX reads, noisy resets).
  const json one_sided{{"type", "OneSidedUnitCell"},
                       {"unit_cell_devices", {json{{"type", "ConstantStepDevice"}, {"w_max", 0.05}}}},
                       {"refresh_every", 1},
                       {"units_in_mbatch", false},
                       {"refresh_forward", {{"noise_management", "AVERAGE_ABS_MAX"}}}};
  for (const json& c : {cell, vector_cell("SINGLE_RANDOM", 3), one_sided}) {
    auto a = make_tile(3, 4, c, UpdateParameters{});
    update_once(*a, x1, d1, 0.1f);
    update_once(*a, x2, d2, 0.1f);
    auto b = make_tile(3, 4, c, UpdateParameters{});
    update_once(*b, x1, d1, 0.1f);
    auto restored = make_tile(3, 4, c, UpdateParameters{}, 99);  // another chip, then b's state
    for (const auto& [name, tensor] : b->state().entries()) {
      Tensor dst = entry(*restored, name);
      dst.copy_(tensor);
    }
    restored->weight().copy_(b->weight());
    update_once(*restored, x2, d2, 0.1f);
    CHECK(restored->weight().to_vector() == a->weight().to_vector());
    CHECK(values(*restored, "0_weights") == values(*a, "0_weights"));
  }
  // The one-sided cell did refresh (the restore above covers its reads and resets).
  auto r = make_tile(3, 4, one_sided, UpdateParameters{});
  update_once(*r, x1, d1, 0.1f);
  CHECK(entry(*r, "refresh_count").item() > 0);
  CHECK(values(*r, "read_nm_running")[0] > 0.f);
}

TEST_CASE("UnitCellRPUConfig: JSON round trip with aihwkit's names, errors that name the field",
          "[compound][config]") {
  UnitCellRPUConfig c;
  c.device = exact_transfer_compound();
  c.device["transfer_every"] = 2;
  const RPUConfig back = RPUConfig::from_json(RPUConfig(c).to_json());
  CHECK(back.family() == "UnitCellRPUConfig");
  CHECK(back.tile_class() == AnalogTileClass::Analog);
  CHECK(back.to_json() == RPUConfig(c).to_json());
  const json dev = back.to_json()["device"];
  for (const char* field :
       {"gamma", "gamma_vec", "transfer_every", "no_self_transfer", "transfer_every_vec", "units_in_mbatch",
        "n_reads_per_transfer", "transfer_columns", "with_reset_prob", "random_selection", "fast_lr", "transfer_lr",
        "transfer_lr_vec", "scale_transfer_lr", "transfer_forward", "transfer_update", "unit_cell_devices"})
    CHECK(dev.contains(field));
  CHECK(dev["transfer_every"] == 2.0);
  CHECK(dev["fast_lr"] == 1.0);
  CHECK(dev["unit_cell_devices"][1]["dw_min"] == 0.01);
  CHECK(dev["transfer_update"]["pulse_type"] == "MEAN_COUNT");
  // The default config builds (a VectorUnitCell of two ConstantSteps).
  CHECK(RPUConfig::from_family("UnitCellRPUConfig").to_json()["device"]["type"] == "VectorUnitCell");

  auto fails_with = [&](json bad, const std::string& what) {
    INFO(bad.dump());
    CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains(what));
  };
  json bad = RPUConfig(c).to_json();
  bad["device"]["transfer_every"] = -1;
  fails_with(bad, "UnitCellRPUConfig.device.transfer_every");
  bad = RPUConfig(c).to_json();
  bad["device"]["unit_cell_devices"][1]["dw_min"] = 0;
  fails_with(bad, "UnitCellRPUConfig.device.unit_cell_devices[1].dw_min");
  bad = RPUConfig(c).to_json();
  bad["device"]["gamma_vec"] = {1.0};
  fails_with(bad, "UnitCellRPUConfig.device.gamma_vec");
  bad = RPUConfig(c).to_json();
  bad["device"]["transfer_evry"] = 1;
  fails_with(bad, "transfer_evry");
  bad = RPUConfig(c).to_json();
  bad["device"]["unit_cell_devices"] = {exact_constant_step(0.01f)};
  fails_with(bad, "UnitCellRPUConfig.device.unit_cell_devices");
  bad = RPUConfig(c).to_json();
  bad["device"] = exact_constant_step(0.01f);
  fails_with(bad, "UnitCellRPUConfig.device");
  bad = RPUConfig(c).to_json();
  bad["device"]["transfer_columns"] = false;
  fails_with(bad, "UnitCellRPUConfig.device.transfer_columns");
  bad = RPUConfig(c).to_json();
  bad["device"]["transfer_update"]["desired_bl"] = 0;
  fails_with(bad, "UnitCellRPUConfig.device.transfer_update.desired_bl");
  json vbad = RPUConfig(UnitCellRPUConfig{}).to_json();
  vbad["device"]["update_policy"] = "SOMETIMES";
  fails_with(vbad, "UnitCellRPUConfig.device.update_policy");
  vbad = RPUConfig(UnitCellRPUConfig{}).to_json();
  vbad["device"]["first_update_idx"] = 2;
  fails_with(vbad, "UnitCellRPUConfig.device.first_update_idx");
  json single = RPUConfig(SingleRPUConfig{}).to_json();
  single["device"] = RPUConfig(c).to_json()["device"];
  fails_with(single, "SingleRPUConfig.device = TransferCompound");
}

TEST_CASE("Every compound reduces the MSE of a small regression over 100 AnalogSGD steps", "[compound][optim]") {
  json transfer{{"type", "TransferCompound"},
                {"unit_cell_devices", {json{{"type", "ConstantStepDevice"}}, json{{"type", "ConstantStepDevice"}}}}};
  json vector_all{{"type", "VectorUnitCell"},
                  {"unit_cell_devices", {json{{"type", "ConstantStepDevice"}}, json{{"type", "ConstantStepDevice"}}}}};
  json vector_random = vector_all;
  vector_random["update_policy"] = "SINGLE_RANDOM";
  json reference{{"type", "ReferenceUnitCell"}, {"unit_cell_devices", {json{{"type", "ConstantStepDevice"}}}}};
  json one_sided{{"type", "OneSidedUnitCell"},
                 {"unit_cell_devices", {json{{"type", "ConstantStepDevice"}}}},
                 {"refresh_every", 1}};
  json buffered = transfer;
  buffered["type"] = "BufferedTransferCompound";
  json chopped = transfer;
  chopped["type"] = "ChoppedTransferCompound";
  for (const json& device : {vector_all, vector_random, reference, one_sided, transfer, buffered, chopped}) {
    INFO(device.dump());
    UnitCellRPUConfig c = test::with_perfect_io(UnitCellRPUConfig{});
    c.device = device;
    const auto [first, last] = test::regression_mse(c);
    INFO("MSE " << first << " -> " << last);
    CHECK(last < 0.5 * first);
  }
}

TEST_CASE("Compound presets: aihwkit's names and values", "[compound][config]") {
  SECTION("TikiTakaIdealizedPreset") {
    const RPUConfig r = resolve_rpu_config("TikiTakaIdealizedPreset");
    r.validate();
    const auto& c = r.get<UnitCellRPUConfig>();
    CHECK(c.device["type"] == "TransferCompound");
    REQUIRE(c.device["unit_cell_devices"].size() == 2);
    const json full = r.to_json();
    for (const auto& d : full["device"]["unit_cell_devices"]) {
      CHECK(d["type"] == "IdealizedPresetDevice");
      CHECK(d["dw_min"] == 0.0002);
      CHECK(d["w_max"] == 1.0);
      CHECK(d["up_down_dtod"] == 0.0);
    }
    CHECK(c.device["transfer_every"] == 1.0);
    CHECK(c.device["units_in_mbatch"] == true);
    CHECK(c.device["transfer_forward"]["noise_management"] == "NONE");
    CHECK(c.device["transfer_forward"]["bound_management"] == "NONE");
    CHECK(c.device["transfer_forward"]["out_bound"] == 20.0);
    CHECK(c.device["transfer_forward"]["out_noise"] == Approx(0.1));
    CHECK(c.device["transfer_update"]["desired_bl"] == 31);
    CHECK(c.forward.bound_management == BoundManagementType::Iterative);
    CHECK(c.forward.noise_management == NoiseManagementType::AbsMax);
    CHECK(c.forward.inp_res == 1.0f / 126.0f);
    CHECK(c.forward.out_res == 1.0f / 510.0f);
    CHECK(c.backward.out_bound == 20.0f);
    // The full JSON (every field written) reads back the same.
    CHECK(RPUConfig::from_json(r.to_json()).to_json() == r.to_json());
  }
  SECTION("Idealized4Preset: a VectorUnitCell of four, one random device per sample") {
    const auto c = resolve_rpu_config("Idealized4Preset").get<UnitCellRPUConfig>();
    CHECK(c.device["type"] == "VectorUnitCell");
    CHECK(c.device["update_policy"] == "SINGLE_RANDOM");
    CHECK(c.device["unit_cell_devices"].size() == 4);
  }
  SECTION("ReRamSB: the Tiki-Taka devices subtract the symmetry point, the vector cells' do not") {
    const json tt = RPUConfig(make_compound_rpu_config_preset("TikiTakaReRamSBPreset")).to_json()["device"];
    CHECK(tt["unit_cell_devices"][0]["type"] == "ReRamSBPresetDevice");
    CHECK(tt["unit_cell_devices"][0]["subtract_symmetry_point"] == true);
    CHECK(tt["unit_cell_devices"][1]["subtract_symmetry_point"] == true);
    CHECK(tt["unit_cell_devices"][1]["w_min_dtod"] == Approx(0.4));
    CHECK(tt["unit_cell_devices"][1]["write_noise_std"] == 56.0);
    const json v = RPUConfig(make_compound_rpu_config_preset("ReRamSB2Preset")).to_json()["device"];
    CHECK(v["unit_cell_devices"][0]["subtract_symmetry_point"] == false);
  }
  SECTION("every compound preset builds a layer") {
    // 6 x (2, 4, TikiTaka, TTv2, ChoppedTTv2) + 7 MixedPrecision + PCMPreset + MixedPrecisionPCMPreset.
    CHECK(compound_rpu_config_presets().size() == 39);
    for (const auto& name : compound_rpu_config_presets()) {
      INFO(name);
      const RPUConfig c = resolve_rpu_config(name);
      Generator g(1, 0);
      AnalogLinear layer(6, 5, true, c, g);
      CHECK(layer.analog_tile_class() == AnalogTileClass::Analog);
    }
  }
  SECTION("PCMPreset: a OneSidedUnitCell of PCM devices refreshed every mini-batch") {
    const json d = resolve_rpu_config("PCMPreset").to_json()["device"];
    CHECK(d["type"] == "OneSidedUnitCell");
    CHECK(d["unit_cell_devices"][0]["type"] == "PCMPresetDevice");
    CHECK(d["unit_cell_devices"][0]["w_min"] == 0.0);
    CHECK(d["refresh_every"] == 1);
    CHECK(d["refresh_forward"]["out_bound"] == 20.0);
    CHECK(d["refresh_update"]["desired_bl"] == 31);
  }
  SECTION("MixedPrecisionPCMPreset: a MixedPrecisionCompound on PCMPresetUnitCell, granularity the PCM dw_min") {
    const RPUConfig r = resolve_rpu_config("MixedPrecisionPCMPreset");
    r.validate();
    CHECK(r.family() == "DigitalRankUpdateRPUConfig");
    const json d = r.to_json()["device"];
    CHECK(d["type"] == "MixedPrecisionCompound");
    CHECK(d["device"]["type"] == "OneSidedUnitCell");
    CHECK(d["device"]["unit_cell_devices"][0]["type"] == "PCMPresetDevice");
    CHECK(d["device"]["refresh_every"] == 1);
    CHECK(d["device"]["refresh_update"]["desired_bl"] == 31);
    CHECK(r.to_json()["forward"]["out_bound"] == 20.0);
    CHECK(make_device_model(d)->granularity() == make_device_model(json{{"type", "PCMPresetDevice"}})->granularity());
    CHECK(RPUConfig::from_json(r.to_json()).to_json() == r.to_json());
  }
  CHECK_THROWS_WITH(make_compound_rpu_config_preset("TikiTakaFooPreset"), Catch::Contains("TikiTakaReRamSBPreset"));
}

TEST_CASE("TTv2 presets on EcRam, EcRamMO and Idealized: desired_bl 100 as aihwkit, and they train", "[compound][config]") {
  const struct {
    const char* name;
    double fast_lr, in_chop_prob;
  } presets[] = {{"TTv2EcRamPreset", 0.1, 0.0},          {"TTv2EcRamMOPreset", 0.1, 0.0},
                 {"TTv2IdealizedPreset", 0.1, 0.0},      {"ChoppedTTv2EcRamPreset", 1.0, 0.01},
                 {"ChoppedTTv2EcRamMOPreset", 0.1, 0.001}, {"ChoppedTTv2IdealizedPreset", 0.1, 0.001}};
  for (const auto& p : presets) {
    INFO(p.name);
    const RPUConfig r = resolve_rpu_config(p.name);
    const auto& c = r.get<UnitCellRPUConfig>();
    CHECK(c.update.desired_bl == 100);
    const json full = r.to_json();
    CHECK(full["device"]["type"] == "ChoppedTransferCompound");
    CHECK(full["device"]["auto_granularity"].get<double>() == 500.0);
    CHECK(full["device"]["fast_lr"].get<double>() == Approx(p.fast_lr));
    CHECK(full["device"]["in_chop_prob"].get<double>() == Approx(p.in_chop_prob));
    CHECK(RPUConfig::from_json(full).to_json() == full);
  }
  // Trains of up to 100 slots move the devices (the regression improves).
  UnitCellRPUConfig c = resolve_rpu_config("TTv2IdealizedPreset").get<UnitCellRPUConfig>();
  c = test::with_perfect_io(c);
  const auto [first, last] = test::regression_mse(c);
  INFO("MSE " << first << " -> " << last);
  CHECK(last < first);
}

TEST_CASE("A layer on compound cells saved mid-training continues bit for bit", "[compound][checkpoint]") {
  // Noisy presets (read noise, device variability, stochastic pulses): every
  // random number comes from the tile's streams and counters in the state.
  for (const char* preset : {"TikiTakaIdealizedPreset", "TTv2ReRamSBPreset", "Idealized2Preset"}) {
    INFO(preset);
    const RPUConfig c = resolve_rpu_config(preset);
    Generator g(9, 0);
    const Tensor teacher = g.normal({3, 5}, 0., 0.3);
    std::vector<Tensor> xs;
    for (int k = 0; k < 5; ++k) xs.push_back(g.uniform({4, 5}));
    auto train = [&](AnalogLinear& layer, int from, int to) {
      AnalogSGD opt(layer.parameters(), layer.analog_tiles(), 0.05);
      for (int k = from; k < to; ++k) {
        opt.zero_grad();
        Tensor loss = mse_loss(layer.forward(xs[k]), matmul(xs[k], transpose(teacher, 0, 1)));
        loss.backward();
        opt.step();
      }
    };
    Generator ga(1, 0), gb(1, 0), gc(2, 0);
    AnalogLinear a(5, 3, true, c, ga), b(5, 3, true, c, gb), restored(5, 3, true, c, gc);
    train(a, 0, 5);
    train(b, 0, 2);
    bool has_hidden = false;
    for (const auto& [name, t] : b.state_dict()) has_hidden = has_hidden || name.find("1_weights") != std::string::npos;
    CHECK(has_hidden);
    restored.load_state_dict(b.state_dict());
    train(restored, 2, 5);
    CHECK(restored.analog_tiles()[0]->weight().to_vector() == a.analog_tiles()[0]->weight().to_vector());
    for (const auto& [name, t] : a.state_dict()) {
      INFO(name);
      const auto other = restored.state_dict();
      for (const auto& [n2, t2] : other)
        if (n2 == name) CHECK(t2.to_vector() == t.to_vector());
    }
  }
}

TEST_CASE("MixedPrecisionCompound: digital rank update, whole steps onto the device", "[compound]") {
  SECTION("known answer: chi collects lr·d·xᵀ, a transfer moves trunc(chi/g) steps") {
    // g = dw_min = 0.01; two samples x = [1, 0.5], d = [0.37], lr 0.1: chi =
    // [0.074, 0.037]. The transfer (before the third sample counts: it runs
    // at the second sample, c = 1 = transfer_every·m_batch with m_batch 1 per
    // call) pulses k = [7, 3] steps with MEAN_COUNT (exact counts) and keeps
    // chi = [0.004, 0.007]. aihwkit 1.1.0 (DigitalRankUpdateRPUConfig, AnalogTile) gives the same W and chi.
    UpdateParameters up;
    up.pulse_type = PulseType::MeanCount;
    const json cell{{"type", "MixedPrecisionCompound"}, {"device", exact_constant_step(0.01f)}};
    auto tile = make_tile(1, 2, cell, up);
    update_once(*tile, {1.f, 0.5f}, {0.37f}, 0.1f);
    CHECK(tile->weight().to_vector() == std::vector<float>{0.f, 0.f});
    update_once(*tile, {1.f, 0.5f}, {0.37f}, 0.1f);
    const auto w = tile->weight().to_vector(), chi = values(*tile, "hidden_weights_chi");
    CHECK(w[0] == Approx(-0.07).margin(1e-6));
    CHECK(w[1] == Approx(-0.03).margin(1e-6));
    CHECK(chi[0] == Approx(0.004).margin(1e-6));
    CHECK(chi[1] == Approx(0.007).margin(1e-6));
    CHECK(entry(*tile, "current_update_index").item() == 2);
  }
  SECTION("known answer on a OneSidedUnitCell: the transfer's down steps land on the minus device") {
    // The same chi and k = [7, 3] as above; d·x > 0 steps down, which the
    // one-sided cell takes as up steps of its minus device: W = W_1 - W_0 =
    // [-0.07, -0.03], W_0 = [0.07, 0.03], W_1 = 0. The granularity is the
    // cell's (its devices' dw_min).
    UpdateParameters up;
    up.pulse_type = PulseType::MeanCount;
    const json one_sided{{"type", "OneSidedUnitCell"}, {"unit_cell_devices", {exact_constant_step(0.01f)}},
                         {"refresh_every", 0}};
    const json cell{{"type", "MixedPrecisionCompound"}, {"device", one_sided}};
    auto tile = make_tile(1, 2, cell, up);
    update_once(*tile, {1.f, 0.5f}, {0.37f}, 0.1f);
    update_once(*tile, {1.f, 0.5f}, {0.37f}, 0.1f);
    const auto w = tile->weight().to_vector(), chi = values(*tile, "hidden_weights_chi");
    CHECK(w[0] == Approx(-0.07).margin(1e-6));
    CHECK(w[1] == Approx(-0.03).margin(1e-6));
    CHECK(chi[0] == Approx(0.004).margin(1e-6));
    CHECK(chi[1] == Approx(0.007).margin(1e-6));
    const auto minus = values(*tile, "0_0_weights"), plus = values(*tile, "0_1_weights");
    CHECK(minus[0] == Approx(0.07).margin(1e-6));
    CHECK(minus[1] == Approx(0.03).margin(1e-6));
    CHECK(plus == std::vector<float>{0.f, 0.f});
    // And it learns: the regression's MSE halves within 100 AnalogSGD steps.
    DigitalRankUpdateRPUConfig rc = test::with_perfect_io(DigitalRankUpdateRPUConfig{});
    rc.device = {{"type", "MixedPrecisionCompound"},
                 {"device", {{"type", "OneSidedUnitCell"}, {"unit_cell_devices", {json{{"type", "ConstantStepDevice"}}}},
                             {"refresh_every", 1}}}};
    const auto [first, last] = test::regression_mse(rc);
    INFO("MSE " << first << " -> " << last);
    CHECK(last < 0.5 * first);
  }
  SECTION("quantised x: deterministic rounding, and stochastic rounding is unbiased") {
    json cell{{"type", "MixedPrecisionCompound"}, {"device", exact_constant_step(0.01f)}, {"transfer_every", 0},
              {"n_x_bins", 4}, {"stoc_round_x", false}};
    auto tile = make_tile(1, 3, cell, UpdateParameters{});
    // width = max|x|/2 = 0.5: 1 -> 1.0, 0.3 -> 0.5, -0.6 -> -0.5.
    update_once(*tile, {1.f, 0.3f, -0.6f}, {1.f}, 1.f);
    CHECK(values(*tile, "hidden_weights_chi") == std::vector<float>{1.f, 0.5f, -0.5f});
    cell["stoc_round_x"] = true;
    auto t2 = make_tile(1, 2, cell, UpdateParameters{});
    // 4000 samples: 0.3 rounds to 0.5 with probability 0.6, so chi/4000 has
    // mean 0.3 and std 0.5·sqrt(0.24/4000) = 0.0039; 5σ = 0.02.
    const int n = 4000;
    std::vector<float> x, d(n, 1.f);
    for (int k = 0; k < n; ++k) x.insert(x.end(), {1.f, 0.3f});
    update_once(*t2, x, d, 1.f);
    const auto chi = values(*t2, "hidden_weights_chi");
    CHECK(chi[0] == Approx(n).margin(1e-3));
    CHECK(chi[1] / n == Approx(0.3).margin(0.02));
  }
  SECTION("DigitalRankUpdateRPUConfig: JSON round trip, errors naming the field, MSE over 100 steps") {
    DigitalRankUpdateRPUConfig c;
    c.device["n_x_bins"] = 8;
    const RPUConfig back = RPUConfig::from_json(RPUConfig(c).to_json());
    CHECK(back.family() == "DigitalRankUpdateRPUConfig");
    CHECK(back.to_json() == RPUConfig(c).to_json());
    for (const char* field : {"transfer_every", "n_rows_per_transfer", "random_row", "granularity", "transfer_lr",
                              "n_x_bins", "n_d_bins", "stoc_round_x", "stoc_round_d", "device"})
      CHECK(back.to_json()["device"].contains(field));
    json bad = RPUConfig(c).to_json();
    bad["device"]["n_x_bins"] = -2;
    CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("DigitalRankUpdateRPUConfig.device.n_x_bins"));
    bad = RPUConfig(c).to_json();
    bad["device"] = {{"type", "VectorUnitCell"}, {"unit_cell_devices", {exact_constant_step(0.01f)}}};
    CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("DigitalRankUpdateRPUConfig.device"));
    bad = RPUConfig(UnitCellRPUConfig{}).to_json();
    bad["device"] = RPUConfig(c).to_json()["device"];
    CHECK_THROWS_WITH(RPUConfig::from_json(bad), Catch::Contains("UnitCellRPUConfig.device"));

    const auto [first, last] = test::regression_mse(test::with_perfect_io(DigitalRankUpdateRPUConfig{}));
    INFO("MSE " << first << " -> " << last);
    CHECK(last < 0.5 * first);
  }
}

TEST_CASE("Compound presets: same bits for any thread count", "[compound][determinism]") {
  Generator g(5, 0);
  const Tensor x = g.uniform({32, 40}), d = g.normal({32, 24}, 0., 0.05);
  for (const char* preset : {"TikiTakaReRamSBPreset", "ChoppedTTv2ReRamSBPreset", "ReRamSB4Preset", "PCMPreset",
                             "MixedPrecisionReRamSBPreset"}) {
    INFO(preset);
    const RPUConfig c = resolve_rpu_config(preset);
    const auto results = test::updated_weights_per_thread_count(
        [&] {
          Generator gl(3, 0);
          return std::make_shared<AnalogLinear>(40, 24, false, c, gl);
        },
        [](auto& layer) -> AnalogTile& { return *layer->analog_tiles()[0]; }, x, d);
    CHECK(results[0] == results[1]);
    CHECK(results[0] == results[2]);
  }
}
