// Checkpoint save/load (see checkpoint.h).
#include "convert/checkpoint.h"

#include "convert/models.h"
#include "engine/generator.h"
#include "engine/runtime.h"
#include "engine/safetensors.h"
#include "layers/config/lightning_config.h"
#include "layers/optim/optimizer.h"
#include "layers/tiles/tile_programming.h"

#include <algorithm>
#include <set>

namespace aimc {
namespace {

const std::string kOptimPrefix = "optim.";

// A programmed model (REFERENCE.md section 5) saves its tiles' programming
// state, which exists only after programming: the rebuilt model is programmed
// (in eval mode) so those tensors exist, then everything is loaded; tiles the
// file holds no programming for are set back to unprogrammed. Strict
// otherwise: every other key must match both ways.
// Checkpoints written before the tile state held the chip seed have a [4]
// "..._state" per tile; the seed is the one the rebuilt model drew from the
// description's analog_seed, so those states are completed from the model.
NamedTensors upgrade_tile_states(const Module& model, NamedTensors state) {
  const NamedTensors own = model.named_buffers();
  for (auto& [name, t] : state) {
    if (t.numel() != 4 || name.size() < 6 || name.compare(name.size() - 6, 6, "_state") != 0) continue;
    for (const auto& [own_name, own_t] : own) {
      if (own_name != name || own_t.numel() != 6) continue;
      Tensor upgraded = own_t.to(DType::Float64).contiguous().clone();
      const Tensor old = t.to(DType::Float64).contiguous();
      std::copy(old.data<double>(), old.data<double>() + 4, upgraded.data<double>());
      t = upgraded;
    }
  }
  return state;
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

void load_model_state(Module& model, const NamedTensors& state_in) {
  const NamedTensors state = upgrade_tile_states(model, state_in);
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
                     const Optimizer* optimizer) {
  if (!description.is_object() || !description.contains("model") || !description["model"].is_string())
    throw ValueError("save_checkpoint: description must be an object with a string \"model\", got " +
                     description.dump());
  NamedTensors tensors = model.state_dict();
  std::map<std::string, std::string> metadata{{"aimc.model", description.dump()}, {"aimc.version", version()}};
  if (optimizer) {
    for (auto& [name, t] : optimizer->named_state()) tensors.emplace_back(kOptimPrefix + name, t);
    metadata["aimc.optimizer"] = nlohmann::json{{"type", optimizer->type_name()}, {"config", optimizer->config()}}.dump();
  }
  write_safetensors(path, tensors, metadata);
}

Checkpoint load_checkpoint(const std::string& path) {
  SafetensorsFile file = read_safetensors(path);
  auto bad = [&](const std::string& what) { return IoError("invalid checkpoint " + path + ": " + what); };
  Checkpoint ck;
  ck.metadata = file.metadata;
  auto it = file.metadata.find("aimc.model");
  if (it == file.metadata.end()) throw bad("no \"aimc.model\" metadata (not an aimc checkpoint?)");
  ck.description = nlohmann::json::parse(it->second, nullptr, false);
  if (ck.description.is_discarded() || !ck.description.is_object() || !ck.description.contains("model") ||
      !ck.description["model"].is_string())
    throw bad("\"aimc.model\" metadata is not a model description: " + it->second);
  auto opt = file.metadata.find("aimc.optimizer");
  if (opt != file.metadata.end()) {
    ck.optimizer = nlohmann::json::parse(opt->second, nullptr, false);
    if (ck.optimizer.is_discarded() || !ck.optimizer.is_object())
      throw bad("\"aimc.optimizer\" metadata is not a JSON object: " + opt->second);
  }

  NamedTensors model_state;
  for (auto& [name, t] : file.tensors) {
    if (name.rfind(kOptimPrefix, 0) == 0) ck.optimizer_state.emplace_back(name.substr(kOptimPrefix.size()), t);
    else model_state.emplace_back(name, t);
  }
  try {
    Generator gen(0);  // the initial values are overwritten by the checkpoint
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
