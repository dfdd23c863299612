// safetensors files and checkpoints: exact round trips (model and optimizer
// state), the byte layout (read back by hand), and that truncated or corrupt
// files and garbled metadata throw IoError naming the path instead of
// crashing, and that a failed write leaves no file behind.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <cmath>
#include <csignal>
#include <limits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "analog_test_util.h"
#include "convert/checkpoint.h"
#include "convert/models.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/safetensors.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/optim/adam.h"
#include "layers/optim/analog_sgd.h"
#include "layers/tiles/analog_tile.h"
#include "layers/optim/sgd.h"
#include "module_test_util.h"

using namespace aimc;
namespace fs = std::filesystem;

namespace {

// A fresh directory per test case, removed afterwards.
struct TempDir : aimc::testing::TempDir {
  TempDir() : aimc::testing::TempDir("aimc_test_checkpoint") {}
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::uint64_t header_length(const std::string& bytes) {
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return n;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw_data(), cb.raw_data(), ca.numel() * dtype_size(ca.dtype())) == 0;
}

// One training step of `model` on a fixed batch.
void train_step(Module& model, Optimizer& opt, const Shape& input) {
  Generator gen(99, 5);
  Shape shape{4};
  shape.insert(shape.end(), input.begin(), input.end());
  Tensor x = gen.uniform(shape, 0, 1);
  Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{0, 1, 2, 3}, {4});
  opt.zero_grad();
  cross_entropy(model.forward(x), labels).backward();
  opt.step();
}

// A file of just an 8-byte length and the (space-padded) JSON header.
void write_header_only(const std::string& path, const std::string& header) {
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((padded.size() >> (8 * i)) & 0xff);
  write_bytes(path, file + padded);
}

// A small file with two tensors and metadata, for corruption tests.
std::string small_file(const TempDir& dir) {
  const std::string path = dir.file("small.safetensors");
  write_safetensors(path,
                    {{"a", Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3})},
                     {"b", Tensor::from_vector(std::vector<std::int32_t>{7, -8}, {2})}},
                    {{"k", "v"}});
  return path;
}

}  // namespace

TEST_CASE("safetensors round trip keeps dtypes, shapes, values, order and metadata") {
  TempDir dir;
  const std::string path = dir.file("t.safetensors");
  Tensor f32 = Tensor::from_vector(std::vector<float>{1.5f, -2.25f, 3e-38f, 7}, {2, 2});
  Tensor f64 = Tensor::from_vector(std::vector<double>{1.0 / 3.0, -1e300}, {2, 1, 1});
  Tensor i32 = Tensor::from_vector(std::vector<std::int32_t>{-7, 2147483647, 0}, {3});
  Tensor i64 = Tensor::from_vector(std::vector<std::int64_t>{INT64_MIN, (std::int64_t(1) << 53) + 1}, {2});
  Tensor scalar = Tensor::scalar(42.0);
  Tensor empty = Tensor::zeros({0, 4});
  Tensor strided = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1);
  write_safetensors(path,
                    {{"z_f32", f32}, {"f64", f64}, {"i32", i32}, {"scalar", scalar}, {"empty", empty}, {"t", strided},
                     {"i64", i64}},
                    {{"note", "hello"}, {"json", "{\"a\": 1}"}});
  CHECK(!fs::exists(path + ".tmp"));
  SafetensorsFile file = read_safetensors(path);
  REQUIRE(file.tensors.size() == 7);
  CHECK(file.tensors[0].first == "z_f32");
  CHECK(same_bits(file.tensors[0].second, f32));
  CHECK(same_bits(file.tensors[1].second, f64));
  CHECK(same_bits(file.tensors[2].second, i32));
  CHECK(file.tensors[3].second.shape() == Shape{});
  CHECK(file.tensors[3].second.item() == 42.0);
  CHECK(file.tensors[4].second.shape() == Shape{0, 4});
  CHECK(file.tensors[5].second.shape() == Shape{3, 2});
  CHECK(file.tensors[5].second.to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(same_bits(file.tensors[6].second, i64));
  CHECK(file.metadata == std::map<std::string, std::string>{{"note", "hello"}, {"json", "{\"a\": 1}"}});
}

TEST_CASE("the file layout is 8-byte length, padded JSON header, raw little-endian data") {
  TempDir dir;
  const std::string path = dir.file("lenet.safetensors");
  Generator gen(1);
  auto model = build_model("lenet5", gen);
  save_checkpoint(path, *model, model_description("lenet5"));
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() > 8);
  const std::uint64_t n = header_length(bytes);
  CHECK(n % 8 == 0);
  CHECK(bytes.size() == 8 + n + 61706 * 4);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  CHECK(header["__metadata__"]["aimc.model"] == "{\"model\":\"lenet5\"}");
  CHECK(header["__metadata__"]["aimc.version"] == "0.2.0");
  CHECK(header["0.weight"]["dtype"] == "F32");
  CHECK(header["0.weight"]["shape"] == nlohmann::json::array({6, 1, 5, 5}));
  CHECK(header["0.weight"]["data_offsets"] == nlohmann::json::array({0, 600}));
  CHECK(header["0.bias"]["data_offsets"] == nlohmann::json::array({600, 624}));
  CHECK(header["11.bias"]["data_offsets"][1] == 61706 * 4);
  // The first tensor's bytes are the weights.
  Tensor w = model->parameters()[0];
  CHECK(std::memcmp(bytes.data() + 8 + n, w.raw_data(), 600) == 0);
}

TEST_CASE("a lenet5 checkpoint with optimizer state round-trips bit for bit") {
  TempDir dir;
  const std::string path = dir.file("ck.safetensors");
  Generator gen(2);
  auto model = build_model("lenet5", gen);
  SGD opt(model->parameters(), 0.05, {.momentum = 0.9});
  train_step(*model, opt, {1, 28, 28});
  train_step(*model, opt, {1, 28, 28});
  save_checkpoint(path, *model, model_description("lenet5"), &opt);

  Checkpoint ck = load_checkpoint(path);
  CHECK(ck.description == nlohmann::json{{"model", "lenet5"}});
  CHECK(ck.optimizer["type"] == "SGD");
  CHECK(ck.optimizer["config"]["momentum"] == 0.9);
  auto original = model->state_dict(), loaded = ck.model->state_dict();
  REQUIRE(original.size() == loaded.size());
  for (std::size_t i = 0; i < original.size(); ++i) {
    CHECK(original[i].first == loaded[i].first);
    CHECK(same_bits(original[i].second, loaded[i].second));
  }
  auto state = opt.named_state();
  REQUIRE(state.size() == 10);
  REQUIRE(ck.optimizer_state.size() == state.size());
  for (std::size_t i = 0; i < state.size(); ++i) {
    CHECK(ck.optimizer_state[i].first == state[i].first);
    CHECK(same_bits(ck.optimizer_state[i].second, state[i].second));
  }

  // Resuming gives the same next step as continuing.
  SGD resumed(ck.model->parameters(), 0.05, {.momentum = 0.9});
  resumed.load_state(ck.optimizer_state);
  train_step(*model, opt, {1, 28, 28});
  train_step(*ck.model, resumed, {1, 28, 28});
  auto a = model->state_dict(), b = ck.model->state_dict();
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(same_bits(a[i].second, b[i].second));
}

TEST_CASE("a resnet checkpoint keeps BatchNorm buffers and Adam state") {
  TempDir dir;
  const std::string path = dir.file("resnet.safetensors");
  Generator gen(3);
  auto model = build_model("resnet20", gen);
  Adam opt(model->parameters(), 1e-3);
  train_step(*model, opt, {1, 28, 28});
  save_checkpoint(path, *model, model_description("resnet20"), &opt);
  Checkpoint ck = load_checkpoint(path);
  auto a = model->state_dict(), b = ck.model->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(same_bits(a[i].second, b[i].second));
  CHECK(ck.optimizer_state.size() == 3 * model->parameters().size());
  model->eval();
  ck.model->eval();
  Tensor x = Generator(4).uniform({2, 1, 28, 28});
  CHECK(same_bits(model->forward(x), ck.model->forward(x)));
}

TEST_CASE("every truncation of a file throws IoError naming the path") {
  TempDir dir;
  const std::string path = small_file(dir);
  const std::string bytes = read_bytes(path);
  const std::string cut = dir.file("cut.safetensors");
  for (std::size_t len = 0; len < bytes.size(); ++len) {
    INFO("length " << len);
    write_bytes(cut, bytes.substr(0, len));
    CHECK_THROWS_AS(read_safetensors(cut), IoError);
    CHECK_THROWS_WITH(read_safetensors(cut), Catch::Contains(cut));
  }
  write_bytes(cut, bytes + "x");  // trailing garbage breaks the exact data layout
  CHECK_THROWS_AS(read_safetensors(cut), IoError);
  CHECK_THROWS_AS(read_safetensors(dir.file("missing.safetensors")), IoError);
}

TEST_CASE("a corrupted header length throws IoError without a huge allocation") {
  TempDir dir;
  const std::string path = small_file(dir);
  const std::string bytes = read_bytes(path);
  for (std::uint64_t n : {std::uint64_t{1} << 62, std::uint64_t{bytes.size()}, std::uint64_t{0},
                          header_length(bytes) - 8, header_length(bytes) + 8}) {
    INFO("header length " << n);
    std::string bad = bytes;
    for (int i = 0; i < 8; ++i) bad[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    write_bytes(path, bad);
    CHECK_THROWS_AS(read_safetensors(path), IoError);
  }
}

TEST_CASE("bad dtypes, shapes, offsets and JSON throw IoError") {
  TempDir dir;
  const std::string path = small_file(dir);
  const std::string bytes = read_bytes(path);
  auto with_replaced = [&](const std::string& from, const std::string& to) {
    std::string bad = bytes;
    const auto pos = bad.find(from);
    REQUIRE(pos != std::string::npos);
    REQUIRE(from.size() == to.size());  // keeps the header length valid
    bad.replace(pos, from.size(), to);
    write_bytes(path, bad);
  };
  with_replaced("\"F32\"", "\"X32\"");
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  CHECK_THROWS_WITH(read_safetensors(path), Catch::Contains("X32") && Catch::Contains(path));
  with_replaced("\"F32\"", "\"F16\"");  // valid in safetensors, unsupported here
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  with_replaced("\"F32\"", "\"I64\"");  // 8-byte elements: 6 of them no longer fit the 24 bytes
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  with_replaced("[2,3]", "[3,3]");  // shape no longer matches the offsets
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  with_replaced("[2,3]", "[2.5]");  // shape entries must be integers
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  with_replaced("[0,24]", "[4,24]");
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  with_replaced("{\"", "[\"");
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  with_replaced("\"v\"", "123");  // metadata values must be strings
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  // Dims whose product wraps to 0 in 64 bits are not an empty tensor.
  write_header_only(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}");
  CHECK_THROWS_WITH(read_safetensors(path), Catch::Contains("exceeds the limit"));

  // Any single corrupted header byte: either still readable or IoError, never a crash.
  const std::uint64_t n = header_length(bytes);
  for (std::uint64_t i = 8; i < 8 + n; ++i) {
    for (char c : {'0', '9', '"', '}', ' ', '\xff'}) {
      std::string bad = bytes;
      bad[i] = c;
      write_bytes(path, bad);
      try {
        read_safetensors(path);
      } catch (const IoError&) {
      }
    }
  }
}

TEST_CASE("a zero dim beside huge ones, or a header nested thousands deep, is refused without a crash") {
  TempDir dir;
  const std::string path = dir.file("limits.safetensors");
  // Empty, but its strides would overflow: the non-zero dims are bounded too.
  write_header_only(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[0,4294967296,4294967296],\"data_offsets\":[0,0]}}");
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  CHECK_THROWS_WITH(read_safetensors(path), Catch::Contains("exceeds the limit") && Catch::Contains("'x'"));
  // A modest empty tensor still loads.
  write_header_only(path, "{\"x\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]}}");
  const SafetensorsFile file = read_safetensors(path);
  REQUIRE(file.tensors.size() == 1);
  CHECK(file.tensors[0].second.shape() == Shape{0, 3});
  // 3000 levels of nesting in the header.
  write_header_only(path, "{\"x\":" + std::string(3000, '[') + std::string(3000, ']') + "}");
  CHECK_THROWS_AS(read_safetensors(path), IoError);
  CHECK_THROWS_WITH(read_safetensors(path), Catch::Contains("nested deeper than 64"));
}

TEST_CASE("a model description with a non-numeric analog_seed or a deeply nested config is refused") {
  TempDir dir;
  Generator gen(5);
  auto model = build_model("mlp", gen);
  const std::string path = dir.file("seed.safetensors");
  for (const nlohmann::json& seed : {nlohmann::json("7"), nlohmann::json(nullptr), nlohmann::json::array({1}),
                                    nlohmann::json(-3)}) {
    const nlohmann::json description = {
        {"model", "mlp"}, {"rpu_config", {{"family", "InferenceRPUConfig"}}}, {"analog_seed", seed}};
    write_safetensors(path, model->state_dict(), {{"aimc.model", description.dump()}});
    INFO(seed.dump());
    CHECK_THROWS_AS(load_checkpoint(path), IoError);
    CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("analog_seed") && Catch::Contains(path));
  }
  // A noise model nested 3000 levels deep (its copy would overflow the stack).
  const std::string deep = std::string(3000, '[') + std::string(3000, ']');
  write_safetensors(path, model->state_dict(),
                    {{"aimc.model", "{\"model\": \"mlp\", \"rpu_config\": {\"family\": \"InferenceRPUConfig\", "
                                    "\"noise_model\": " + deep + "}}"}});
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("nested deeper than 64"));
  write_safetensors(path, model->state_dict(), {{"aimc.model", "{\"model\": \"mlp\"}"}, {"aimc.optimizer", deep}});
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("aimc.optimizer") && Catch::Contains("nested deeper"));
}

TEST_CASE("missing or garbled checkpoint metadata throws IoError naming the path") {
  TempDir dir;
  Generator gen(5);
  auto model = build_model("mlp", gen);
  const std::string path = dir.file("meta.safetensors");
  write_safetensors(path, model->state_dict());
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains(path) && Catch::Contains("aimc.model"));
  write_safetensors(path, model->state_dict(), {{"aimc.model", "{not json"}});
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
  write_safetensors(path, model->state_dict(), {{"aimc.model", "{\"model\": \"nope\"}"}});
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("nope"));
  // The description names a different model than the tensors.
  write_safetensors(path, model->state_dict(), {{"aimc.model", "{\"model\": \"lenet5\"}"}});
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
  // A description is an object whose "model", if any, names a model.
  CHECK_THROWS_AS(save_checkpoint(path, *model, nlohmann::json{{"model", 5}}), ValueError);
  CHECK_THROWS_AS(save_checkpoint(path, *model, nlohmann::json::array({"mlp"})), ValueError);
}

TEST_CASE("invalid tensor names are rejected before anything is written") {
  TempDir dir;
  const std::string path = dir.file("names.safetensors");
  Tensor t = Tensor::zeros({2});
  CHECK_THROWS_AS(write_safetensors(path, {{"", t}}), ValueError);
  CHECK_THROWS_AS(write_safetensors(path, {{"__metadata__", t}}), ValueError);
  CHECK_THROWS_AS(write_safetensors(path, {{"a", t}, {"a", t}}), ValueError);
  CHECK_THROWS_AS(write_safetensors(path, {{"a", Tensor()}}), ValueError);
  CHECK(!fs::exists(path));
  CHECK(!fs::exists(path + ".tmp"));
  CHECK_THROWS_AS(write_safetensors(dir.file("no/such/dir/x.safetensors"), {{"a", t}}), IoError);
}

TEST_CASE("an interrupted write leaves no target file and keeps an existing one intact") {
  TempDir dir;
  const std::string path = dir.file("big.safetensors");
  Tensor big = Tensor::ones({64, 1024});  // 256 KiB of data
  // Simulate a full disk: limit the size of files this process may write.
  struct rlimit old_limit {};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  auto fail_write = [&] {
    struct rlimit limit = old_limit;
    limit.rlim_cur = 64 * 1024;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &limit) == 0);
    bool threw = false;
    try {
      write_safetensors(path, {{"big", big}});
    } catch (const IoError& e) {
      threw = std::string(e.what()).find(path) != std::string::npos;
    }
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    return threw;
  };
  CHECK(fail_write());
  CHECK(!fs::exists(path));
  CHECK(!fs::exists(path + ".tmp"));

  write_safetensors(path, {{"small", Tensor::ones({4})}});
  const std::string before = read_bytes(path);
  CHECK(fail_write());
  CHECK(read_bytes(path) == before);
  CHECK(!fs::exists(path + ".tmp"));
  std::signal(SIGXFSZ, old_handler);
}

// aimc before 0.2.0 split plain analog convolutions along input channels (now
// by element, as aihwkit). lenet5's second conv (6 channels of 5x5 = 150
// inputs) on tiles of 40 inputs: by channel 6 tiles of 25, by element
// [38, 38, 37, 37]. A file of that version rebuilds with the channel split;
// the same file claiming 0.2.0 no longer fits.
TEST_CASE("a checkpoint written before 0.2.0 rebuilds its convolutions with the channel split") {
  TempDir dir;
  const std::string path = (dir.path / "old.safetensors").string();
  nlohmann::json description = model_description("lenet5");
  description["rpu_config"] = {{"family", "InferenceRPUConfig"}, {"mapping", {{"max_input_size", 40}}}};
  description["analog_seed"] = 5;
  nlohmann::json as_built = description;
  as_built["conv_channel_split"] = true;
  Generator gen(0);
  auto model = build_model_from_description(as_built, gen);
  auto write = [&](const std::string& version) {
    write_safetensors(path, model->state_dict(), {{"aimc.model", description.dump()}, {"aimc.version", version}});
  };
  write("0.1.0");
  Checkpoint ck = load_checkpoint(path);
  bool found = false;
  for (const auto& [name, m] : ck.model->named_children())
    if (auto* conv = dynamic_cast<AnalogConvNd*>(m.get()); conv && conv->in_channels() == 6) {
      found = true;
      CHECK(conv->analog_cores()[0].tile_array().grid().in_pieces == std::vector<std::int64_t>(6, 25));
    }
  CHECK(found);
  model->eval();
  ck.model->eval();
  const Tensor x = Generator(9).normal({2, 1, 28, 28});
  CHECK((*model)(x).to_vector() == (*ck.model)(x).to_vector());
  write("0.2.0");
  CHECK_THROWS_AS(load_checkpoint(path), IoError);
}

// aimc before 0.2.0 wrote every aihwkit IOParameters field into a
// TorchInferenceRPUConfig's forward; 0.2.0 rejects them in a config, but such
// a file still loads (with lightning's fields only).
TEST_CASE("a 0.1.0 TorchInferenceRPUConfig checkpoint with aihwkit's IOParameters fields still loads") {
  TempDir dir;
  const std::string path = (dir.path / "old_lightning.safetensors").string();
  nlohmann::json description = model_description("mlp");
  description["rpu_config"] = {{"family", "TorchInferenceRPUConfig"}};
  description["analog_seed"] = 3;
  Generator gen(0);
  auto model = build_model_from_description(description, gen);
  description["rpu_config"]["forward"] = {{"inp_res", -1}, {"w_noise", 0.0}, {"noise_management", "ABS_MAX"}};
  auto write = [&](const std::string& version) {
    write_safetensors(path, model->state_dict(), {{"aimc.model", description.dump()}, {"aimc.version", version}});
  };
  write("0.1.0");
  Checkpoint ck = load_checkpoint(path);
  model->eval();
  ck.model->eval();
  const Tensor x = Generator(4).normal({3, 1, 28, 28});
  CHECK((*model)(x).to_vector() == (*ck.model)(x).to_vector());
  write("0.2.0");
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("forward.noise_management"));
}

// Before the tile state had named entries, each tile saved one float64
// "<tile>_state": [6] (counters, AVERAGE_ABS_MAX running values, seed
// low/high 32 bits) or, before that, [4] without the seed. Such files load
// into the named entries with the same values, so the loaded model continues
// the noise streams of the one that wrote it bit for bit.
TEST_CASE("checkpoints with the packed float64 tile state ([6] and [4]) load into the named entries",
          "[checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("packed.safetensors");
  nlohmann::json description = model_description("mlp");
  description["rpu_config"] = {{"family", "InferenceRPUConfig"},
                               {"forward", {{"noise_management", "AVERAGE_ABS_MAX"}}},
                               {"mapping", {{"max_input_size", 256}, {"max_output_size", 256}}}};
  description["analog_seed"] = 7;
  const Tensor x = Generator(4).normal({3, 1, 28, 28});
  for (int size : {6, 4}) {
    CAPTURE(size);
    Generator gen(0);
    auto model = build_model_from_description(description, gen);
    // [6]: a chip only the file knows (another seed, high bits set); [4]: the
    // one the description's analog_seed gives, as those files assumed.
    if (size == 6) model->reseed_analog(0x123456789abcdefull);
    model->eval();
    (void)(*model)(x);
    (void)(*model)(x);  // counters and running values past their initial values
    save_checkpoint(path, *model, description);
    SafetensorsFile f = read_safetensors(path);
    const NamedTensors packed = test::packed_tile_states(f.tensors, size);
    // The mlp's first layer (784 inputs, tiles of at most 256) has four
    // tiles, the others one each: six tiles, five entries to one each.
    std::size_t tiles = 0;
    for (const auto& [name, t] : f.tensors) tiles += name.find("_forward_counter") != std::string::npos;
    REQUIRE(tiles == 6);
    REQUIRE(test::has_name(packed, "1.tile_0_3_state"));
    REQUIRE_FALSE(test::has_name(packed, "1.tile_0_0_seed"));
    REQUIRE(packed.size() == f.tensors.size() - 4 * tiles);
    // The metadata keep the architecture: files with packed states rebuild
    // their named model all the same (a [4] state's chip is its analog_seed's).
    REQUIRE(f.metadata.count("aimc.architecture") == 1);
    write_safetensors(path, packed, f.metadata);

    Checkpoint ck = load_checkpoint(path);
    const NamedTensors a = model->state_dict(), b = ck.model->state_dict();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].first == b[i].first);
      CHECK(same_bits(a[i].second, b[i].second));  // names, dtypes and values
    }
    // The named entries of one tile, by hand: the counters advanced, the
    // running value was set, the seed is the writer's.
    const AnalogTile& written = dynamic_cast<AnalogLinear&>(*model->named_children()[1].second).tile_array().tile(0, 2);
    const AnalogTile& loaded = dynamic_cast<AnalogLinear&>(*ck.model->named_children()[1].second).tile_array().tile(0, 2);
    CHECK(written.forward_counter() > 0);
    CHECK(loaded.forward_counter() == written.forward_counter());
    CHECK(loaded.backward_counter() == written.backward_counter());
    CHECK(written.nm_running(0) > 0.f);
    CHECK(loaded.nm_running(0) == written.nm_running(0));
    CHECK(loaded.nm_running(1) == written.nm_running(1));
    CHECK(loaded.seed() == written.seed());
    if (size == 6) CHECK((written.seed() >> 32) != 0);  // the high half travelled too
    ck.model->eval();
    CHECK((*model)(x).to_vector() == (*ck.model)(x).to_vector());
  }
  // A packed state of another size is refused, naming the key.
  Generator gen(0);
  auto model = build_model_from_description(description, gen);
  NamedTensors state = test::packed_tile_states(model->state_dict(), 6);
  for (auto& [name, t] : state)
    if (name == "1.tile_0_0_state") t = t.slice(0, 0, 5).contiguous();
  write_safetensors(path, state, {{"aimc.model", description.dump()}, {"aimc.version", version()}});
  CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("1.tile_0_0_state") && Catch::Contains("4 or 6"));
  // Values that cannot be counters, seeds or running values are refused
  // (casting them would be undefined), naming the key and the position.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& [position, value] : std::vector<std::pair<int, double>>{
           {0, nan}, {1, -1.0}, {0, 2.5}, {0, 1e300}, {2, nan}, {3, INFINITY}, {4, 4294967296.0}, {5, -3.0}}) {
    CAPTURE(position, value);
    NamedTensors bad = test::packed_tile_states(model->state_dict(), 6);
    for (auto& [name, t] : bad)
      if (name == "1.tile_0_0_state") t.data<double>()[position] = value;
    write_safetensors(path, bad, {{"aimc.model", description.dump()}, {"aimc.version", version()}});
    CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("1.tile_0_0_state") &&
                                                 Catch::Contains("[" + std::to_string(position) + "]"));
  }
}

TEST_CASE("named tile state entries with impossible values are refused", "[checkpoint]") {
  TempDir dir;
  const std::string path = dir.file("bad_state.safetensors");
  nlohmann::json description = model_description("mlp");
  description["rpu_config"] = {{"family", "InferenceRPUConfig"}};
  description["analog_seed"] = 7;
  Generator gen(0);
  auto model = build_model_from_description(description, gen);
  const NamedTensors good = model->state_dict();
  for (const std::string key : {"1.tile_0_0_forward_counter", "1.tile_0_0_backward_nm_running"}) {
    CAPTURE(key);
    NamedTensors bad = good;
    bool found = false;
    for (auto& [name, t] : bad)
      if (name == key) {
        found = true;
        t = key.find("counter") != std::string::npos
                ? Tensor::from_vector(std::vector<std::int64_t>{-5}, {})
                : Tensor::scalar(std::numeric_limits<double>::quiet_NaN(), DType::Float32);
      }
    REQUIRE(found);
    write_safetensors(path, bad, {{"aimc.model", description.dump()}, {"aimc.version", version()}});
    CHECK_THROWS_AS(load_checkpoint(path), IoError);
    CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains(key));
  }
}

// Training on pulsed devices (SingleRPUConfig with its noisy forward and
// backward, cycle-to-cycle noise and device-to-device draws): the checkpoint
// holds every hidden parameter and stream counter, so a restored model
// continues training with the same bits as the one that never stopped.
TEST_CASE("a model on pulsed devices continues training bit for bit after a checkpoint") {
  TempDir dir;
  const std::string path = dir.file("pulsed.safetensors");
  nlohmann::json description = model_description("mlp_sigmoid");
  description["rpu_config"] = {{"family", "SingleRPUConfig"}};
  description["analog_seed"] = 4;
  Generator gen(1);
  auto model = build_model_from_description(description, gen);
  AnalogSGD opt(model->parameters(), model->analog_tiles(), 0.5);
  REQUIRE(opt.pulsed_tiles().size() == 4);  // 784 inputs on two tiles, then 256 -> 128, 128 -> 10
  const auto names = model->state_dict();
  CHECK(test::has_name(names, "1.tile_0_0_max_bound"));
  CHECK(test::has_name(names, "1.tile_0_1_dwmin_down"));
  CHECK(test::has_name(names, "1.tile_0_0_pulse_counter"));
  train_step(*model, opt, {1, 28, 28});
  train_step(*model, opt, {1, 28, 28});
  save_checkpoint(path, *model, description, &opt);
  Checkpoint ck = load_checkpoint(path);
  AnalogSGD resumed(ck.model->parameters(), ck.model->analog_tiles(), 0.5);
  for (int k = 0; k < 3; ++k) {
    train_step(*model, opt, {1, 28, 28});
    train_step(*ck.model, resumed, {1, 28, 28});
  }
  const auto a = model->state_dict(), b = ck.model->state_dict();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(same_bits(a[i].second, b[i].second));
  }
  // The pulses moved the weights (the test would pass on a frozen model otherwise).
  Generator gen2(1);
  auto fresh = build_model_from_description(description, gen2);
  CHECK_FALSE(same_bits(fresh->state_dict()[0].second, a[0].second));
}

// Pulsed devices' entries from an untrusted file: a stream counter below 0
// or a non-finite bound, step or sub-device weight is refused, naming the
// entry and the element (the update would read them unchecked).
TEST_CASE("a pulsed checkpoint with a negative counter or a non-finite hidden parameter is refused") {
  TempDir dir;
  const std::string path = dir.file("bad_pulsed.safetensors");
  nlohmann::json description = model_description("mlp");
  description["rpu_config"] = {{"family", "UnitCellRPUConfig"}};  // a VectorUnitCell of two devices
  description["analog_seed"] = 3;
  Generator gen(0);
  auto model = build_model_from_description(description, gen);
  const NamedTensors good = model->state_dict();
  write_safetensors(path, good, {{"aimc.model", description.dump()}, {"aimc.version", version()}});
  CHECK_NOTHROW(load_checkpoint(path));
  for (const std::string key : {"1.tile_0_0_0_pulse_counter", "1.tile_0_0_0_max_bound", "1.tile_0_1_1_dwmin_up",
                                "1.tile_0_0_1_weights"}) {
    CAPTURE(key);
    NamedTensors bad = good;
    bool found = false;
    for (auto& [name, t] : bad)
      if (name == key) {
        found = true;
        if (key.find("counter") != std::string::npos) {
          t = Tensor::from_vector(std::vector<std::int64_t>{-1}, {});
        } else {
          t = t.clone();
          t.data<float>()[7] = key.find("weights") != std::string::npos ? INFINITY : std::nanf("");
        }
      }
    REQUIRE(found);
    write_safetensors(path, bad, {{"aimc.model", description.dump()}, {"aimc.version", version()}});
    CHECK_THROWS_AS(load_checkpoint(path), IoError);
    CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains(key));
    if (key.find("counter") == std::string::npos)
      CHECK_THROWS_WITH(load_checkpoint(path), Catch::Contains("[7]") && Catch::Contains("finite"));
  }
}
