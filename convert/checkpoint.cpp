// Checkpoint save/load (see checkpoint.h).
#include "convert/checkpoint.h"

#include "convert/models.h"
#include "engine/generator.h"
#include "engine/json_input.h"
#include "engine/runtime.h"
#include "engine/safetensors.h"
#include "layers/config/lightning_config.h"
#include "layers/modules/module_factory.h"
#include "layers/optim/optimizer.h"
#include "layers/tiles/tile_programming.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace aimc {
namespace {

const std::string kOptimPrefix = "optim.";

// The start of untrusted text, for a message.
std::string excerpt(const std::string& text) {
  constexpr std::size_t kMax = 200;
  if (text.size() <= kMax) return text;
  std::string out(text, 0, kMax);
  out += "...";
  return out;
}

// Checkpoints from before the tile state had named entries hold one float64
// "<tile>_state" per tile with fixed positions: [0]/[1] the forward/backward
// stream counters, [2]/[3] the forward/backward AVERAGE_ABS_MAX running
// values and, since the state held the chip seed, [4]/[5] the seed's low and
// high 32 bits. Such a vector becomes the named entries (analog_tile.h); a
// [4] one takes the seed the rebuilt model drew from the description's
// analog_seed, the one the file's model had.
NamedTensors upgrade_tile_states(const Module& model, const NamedTensors& state) {
  static const std::string kOld = "_state";
  std::map<std::string, Tensor> own;
  for (const auto& [name, t] : model.named_buffers()) own.emplace(name, t);
  NamedTensors out;
  for (const auto& entry : state) {
    const std::string& name = entry.first;  // not a structured binding: the lambdas below capture it
    const Tensor& t = entry.second;
    const bool old_name = name.size() > kOld.size() && name.compare(name.size() - kOld.size(), kOld.size(), kOld) == 0;
    const std::string tile = old_name ? name.substr(0, name.size() - kOld.size()) : "";
    const auto seed_it = own.find(tile + "_seed");
    if (!old_name || own.count(name) || seed_it == own.end() || !own.count(tile + "_forward_counter")) {
      out.emplace_back(name, t);
      continue;
    }
    if (t.numel() != 4 && t.numel() != 6)
      throw ValueError("tile state '" + name + "' has " + std::to_string(t.numel()) +
                       " values, expected 4 or 6 (forward/backward counters and running values[, seed])");
    const Tensor v = t.to(Device::cpu()).to(DType::Float64).contiguous();
    const double* p = v.data<double>();
    // Untrusted values: counters and seed halves whole numbers in range
    // (a cast of anything else is undefined), running values finite.
    auto check = [&](int i, double max, const char* what) {
      if (!(p[i] >= 0.0 && p[i] <= max && p[i] == std::floor(p[i])))
        throw ValueError("tile state '" + name + "' [" + std::to_string(i) + "] = " + std::to_string(p[i]) +
                         " is not a valid " + what);
    };
    check(0, 9007199254740992.0, "stream counter (a whole number in [0, 2^53])");
    check(1, 9007199254740992.0, "stream counter (a whole number in [0, 2^53])");
    for (int i : {2, 3})
      if (!std::isfinite(p[i]))
        throw ValueError("tile state '" + name + "' [" + std::to_string(i) + "] = " + std::to_string(p[i]) +
                         " is not a finite noise-management running value");
    if (t.numel() == 6) {
      check(4, 4294967295.0, "seed half (a whole number in [0, 2^32))");
      check(5, 4294967295.0, "seed half (a whole number in [0, 2^32))");
    }
    auto int64 = [](std::int64_t x) { return Tensor::from_vector(std::vector<std::int64_t>{x}, {}); };
    // Counters were exact integers below 2^53, the running values float32s.
    out.emplace_back(tile + "_forward_counter", int64(static_cast<std::int64_t>(p[0])));
    out.emplace_back(tile + "_backward_counter", int64(static_cast<std::int64_t>(p[1])));
    out.emplace_back(tile + "_forward_nm_running", Tensor::scalar(p[2], DType::Float32));
    out.emplace_back(tile + "_backward_nm_running", Tensor::scalar(p[3], DType::Float32));
    if (t.numel() == 6) {
      const std::uint64_t seed = static_cast<std::uint64_t>(p[4]) | (static_cast<std::uint64_t>(p[5]) << 32);
      out.emplace_back(tile + "_seed", int64(static_cast<std::int64_t>(seed)));
    } else {
      out.emplace_back(tile + "_seed", seed_it->second.clone());
    }
  }
  return out;
}

// Before 0.2.0 a TorchInferenceRPUConfig's JSON carried every field of
// aihwkit's IOParameters in "forward" (the lightning forward ignored them);
// 0.2.0 rejects those, so such files keep lightning's fields only.
void drop_aihwkit_only_lightning_fields(nlohmann::json& description) {
  if (!description.contains("rpu_config")) return;
  nlohmann::json& rpu = description["rpu_config"];
  if (!rpu.is_object() || rpu.value("family", "") != "TorchInferenceRPUConfig" || !rpu.contains("forward") ||
      !rpu["forward"].is_object())
    return;
  const auto& keep = LightningIOParameters::fields();
  nlohmann::json forward = nlohmann::json::object();
  for (auto it = rpu["forward"].begin(); it != rpu["forward"].end(); ++it)
    if (std::find(keep.begin(), keep.end(), it.key()) != keep.end()) forward[it.key()] = it.value();
  rpu["forward"] = forward;
}

// A programmed model (REFERENCE.md section 5) saves its tiles' programming
// state, which exists only after programming: the rebuilt model is programmed
// (in eval mode) so those tensors exist, then everything is loaded; tiles the
// file holds no programming for are set back to unprogrammed. Strict
// otherwise: every other key must match both ways.
// The tile entries of a file (analog_tile.h, and a pulsed device's hidden
// parameters, layers/devices/tile_device.h): stream counters ("..._counter")
// >= 0 (their blocks are Philox offsets), every floating-point value finite
// (running values < 0 mean unset; bounds, steps, weights and buffers feed
// the update's arithmetic).
void check_tile_state_values(const NamedTensors& state) {
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const auto& [name, t] : state) {
    if (name.find("tile_") == std::string::npos) continue;
    const bool counter = ends_with(name, "_counter");
    const bool floating = t.dtype() == DType::Float32 || t.dtype() == DType::Float64;
    if (!counter && !floating) continue;
    const Tensor v = t.to(Device::cpu()).to(DType::Float64).contiguous();
    const double* p = v.data<double>();
    for (std::int64_t k = 0; k < v.numel(); ++k) {
      std::string at;  // built by appends: "[" + ... trips a false -Wrestrict in GCC 12
      if (v.numel() != 1) at.append("[").append(std::to_string(k)).append("]");
      if (counter && !(p[k] >= 0.0))
        throw ValueError("tile state '" + name + "'" + at + " = " + std::to_string(p[k]) + " must be >= 0");
      if (floating && !std::isfinite(p[k]))
        throw ValueError("tile state '" + name + "'" + at + " = " + std::to_string(p[k]) + " must be finite");
    }
  }
}

void load_model_state(Module& model, const NamedTensors& state_in) {
  const NamedTensors state = upgrade_tile_states(model, state_in);
  check_tile_state_values(state);
  bool programmed = false;
  for (const auto& [name, t] : state) programmed = programmed || is_tile_programming_key(name);
  if (!programmed) {
    model.load_state_dict(state, true);
    return;
  }
  model.eval();
  model.program_analog_weights();
  std::set<std::string> in_file, own;
  for (const auto& [name, t] : state) in_file.insert(name);
  std::vector<Tensor> unprogrammed;  // "programming" flags of tiles the file does not hold
  for (const auto& [name, t] : model.state_dict()) {
    own.insert(name);
    if (in_file.count(name)) continue;
    if (!is_tile_programming_key(name)) throw ValueError("missing key '" + name + "'");
    if (name.size() > 12 && name.compare(name.size() - 12, 12, "_programming") == 0) unprogrammed.push_back(t);
  }
  for (const auto& name : in_file)
    if (!own.count(name)) throw ValueError("unexpected key '" + name + "'");
  model.load_state_dict(state, false);
  for (Tensor& t : unprogrammed) t.data<double>()[0] = 0.0;
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const nlohmann::json& description,
                     const Optimizer* optimizer, const nlohmann::json& training_state) {
  if (!description.is_object() || (description.contains("model") && !description["model"].is_string()))
    throw ValueError("save_checkpoint: description must be an object (with a string \"model\" for a named model), "
                     "got " + description.dump());
  NamedTensors tensors = model.state_dict();
  std::map<std::string, std::string> metadata{{"aimc.model", description.dump()}, {"aimc.version", version()}};
  // The architecture, when the factory can build every module of it; else
  // only a named model can be rebuilt.
  const std::string unknown = unknown_module_type(model);
  if (unknown.empty()) metadata["aimc.architecture"] = module_architecture(model).dump();
  else if (!description.contains("model"))
    throw ValueError("save_checkpoint: module type '" + unknown + "' is not registered (register_module_type) and "
                     "the description names no model, so the checkpoint could not be loaded");
  if (optimizer) {
    for (auto& [name, t] : optimizer->named_state()) tensors.emplace_back(kOptimPrefix + name, t);
    metadata["aimc.optimizer"] = nlohmann::json{{"type", optimizer->type_name()}, {"config", optimizer->config()}}.dump();
  }
  if (!training_state.is_null()) metadata["aimc.training"] = training_state.dump();
  write_safetensors(path, tensors, metadata);
}

Checkpoint load_checkpoint(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  auto bad = [&](const std::string& what) { return IoError("invalid checkpoint " + path + ": " + what); };
  Checkpoint ck;
  ck.metadata = file.metadata;
  auto it = file.metadata.find("aimc.model");
  if (it == file.metadata.end()) throw bad("no \"aimc.model\" metadata (not an aimc checkpoint?)");
  std::string json_error;
  auto description = parse_json_bounded<nlohmann::json>(it->second, json_error);
  if (!description) throw bad("\"aimc.model\" metadata: " + json_error);
  ck.description = std::move(*description);
  // Files with an architecture rebuild from it; the others need a named model.
  auto arch = file.metadata.find("aimc.architecture");
  nlohmann::json architecture;
  if (arch != file.metadata.end()) {
    auto parsed = parse_json_bounded<nlohmann::json>(arch->second, json_error);
    if (!parsed) throw bad("\"aimc.architecture\" metadata: " + json_error);
    architecture = std::move(*parsed);
  }
  const bool named = ck.description.is_object() && ck.description.contains("model");
  if (!ck.description.is_object() || (named && !ck.description["model"].is_string()) ||
      (!named && architecture.is_null()))
    throw bad("\"aimc.model\" metadata is not a model description: " + excerpt(it->second));
  auto opt = file.metadata.find("aimc.optimizer");
  if (opt != file.metadata.end()) {
    auto optimizer = parse_json_bounded<nlohmann::json>(opt->second, json_error);
    if (!optimizer) throw bad("\"aimc.optimizer\" metadata: " + json_error);
    ck.optimizer = std::move(*optimizer);
    if (!ck.optimizer.is_object())
      throw bad("\"aimc.optimizer\" metadata is not a JSON object: " + excerpt(opt->second));
  }
  auto training = file.metadata.find("aimc.training");
  if (training != file.metadata.end()) {
    auto state = parse_json_bounded<nlohmann::json>(training->second, json_error);
    if (!state) throw bad("\"aimc.training\" metadata: " + json_error);
    ck.training_state = std::move(*state);
    if (!ck.training_state.is_object())
      throw bad("\"aimc.training\" metadata is not a JSON object: " + excerpt(training->second));
  }

  NamedTensors model_state;
  for (auto& [name, t] : file.tensors) {
    if (name.rfind(kOptimPrefix, 0) == 0) ck.optimizer_state.emplace_back(name.substr(kOptimPrefix.size()), t);
    else model_state.emplace_back(name, t);
  }
  try {
    Generator gen(0);  // the initial values are overwritten by the checkpoint
    // Packed tile states predate the saved architecture; a [4] one takes its
    // chip seed from the description's analog_seed, so files holding them
    // rebuild their named model even when an architecture was added since.
    bool packed = false;
    for (const auto& [name, t] : model_state)
      packed = packed || (name.find("tile_") != std::string::npos && name.size() > 6 &&
                          name.compare(name.size() - 6, 6, "_state") == 0);
    if (!architecture.is_null() && !(packed && named)) {
      // A genuine model's parameters and buffers are all in the file (a strict
      // load), so its tensors bound what the architecture may allocate.
      std::int64_t elements = 0;
      for (const auto& [name, t] : model_state) elements += t.numel();
      ck.model = module_from_config(architecture, gen, elements, "aimc.architecture");
      load_model_state(*ck.model, model_state);
      return ck;
    }
    nlohmann::json description = ck.description;
    // Before 0.2.0 plain analog convolutions split their tiles along input
    // channels (now by element, as aihwkit); such files rebuild that way.
    auto version = file.metadata.find("aimc.version");
    const bool before_0_2 = version == file.metadata.end() || version->second == "0.1.0";
    if (before_0_2 && description.contains("rpu_config") && !description.contains("mapped"))
      description["conv_channel_split"] = true;
    if (before_0_2) drop_aihwkit_only_lightning_fields(description);
    ck.model = build_model_from_description(description, gen);
    load_model_state(*ck.model, model_state);
  } catch (const Error& e) {
    throw bad(e.what());
  }
  return ck;
}

}  // namespace aimc
