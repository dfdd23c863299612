// Checkpoints: a model's state dict (and optionally its optimizer's state) in
// one safetensors file, with the model description in the metadata so the
// file alone is enough to rebuild and evaluate the model.
//
// Tensor names: the model's state_dict keys ("3.weight", "0.running_mean"),
// optimizer state under "optim." ("optim.0.momentum_buffer"). Metadata:
// "aimc.model" (the description JSON), "aimc.architecture" (the module tree:
// module_architecture in layers/modules/module_factory.h; older files lack
// it), "aimc.version", with an optimizer
// "aimc.optimizer" ({"type": ..., "config": {...}} JSON) and, in checkpoints
// `aimc train` can resume, "aimc.training" (where the run stands and the
// options it cannot change; tools/training/run_state.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/modules/module.h"

namespace aimc {

class Optimizer;

struct Checkpoint {
  std::shared_ptr<Module> model;
  nlohmann::json description;                              // {"model": name, ...} or another object
  std::vector<std::pair<std::string, Tensor>> optimizer_state;  // "optim." stripped; empty if none
  nlohmann::json optimizer;                                // {"type", "config"} or null
  nlohmann::json training_state;                           // "aimc.training" JSON or null
  std::map<std::string, std::string> metadata;             // the raw file metadata
};

// Writes atomically (see write_safetensors); IoError on failure. The
// description is a JSON object, {"model": name, ...} for a named model (the
// command line reads it) or anything, {} included, for another model: the
// architecture saved beside it rebuilds the model either way. A model with a
// module type the factory does not know (register_module_type) is saved
// without the architecture, and then needs a model name (ValueError otherwise).
// training_state, when not null, becomes the "aimc.training" metadata.
void save_checkpoint(const std::string& path, const Module& model, const nlohmann::json& description,
                     const Optimizer* optimizer = nullptr, const nlohmann::json& training_state = nullptr);

// Reads the file, rebuilds the model and loads its state (strict). The model
// is rebuilt from "aimc.architecture" (module_from_config) when the file has
// one, so any module tree (a Graph, a hand-made Sequential) loads; files
// without it (written before the architecture was saved) rebuild the named
// model of their description with build_model_from_description. A missing,
// garbled or inconsistent checkpoint throws IoError naming the path.
Checkpoint load_checkpoint(const std::string& path);

}  // namespace aimc
