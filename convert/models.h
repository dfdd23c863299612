// Model builders: the named digital models the command line and the
// experiments use. Every model is a Sequential initialised from a Generator
// (PyTorch's default initialisation), so a name and a seed give the same
// weights every time. A model's description is the JSON {"model": name};
// checkpoints store it and load_checkpoint rebuilds the model from it.
//
// Inputs: "mlp", "mlp_sigmoid", "lenet5", "vgg_small", "resnet20", "resnet32"
// take [N, 1, 28, 28] (MNIST-like); "resnet20_cifar", "resnet32_cifar" take
// [N, 3, 32, 32]. All output [N, 10] logits.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/modules/sequential.h"

namespace aimc {

class Generator;

// The known model names, in a fixed order.
const std::vector<std::string>& model_names();

// Builds a model by name; ConfigError listing the known names otherwise.
std::shared_ptr<Sequential> build_model(const std::string& name, Generator& gen);
// Builds from a description {"model": name}; ConfigError if malformed.
// Stream of the Generator(analog_seed, stream) that converts a model to analog.
constexpr std::uint64_t kAnalogConversionStream = 3;

// With "rpu_config" (and "analog_seed") in the description the model is
// converted to analog exactly as when it was made: convert_to_analog, or
// convert_to_analog_mapped with "mapped": true. "conv_channel_split": true
// keeps convert_to_analog but splits convolutions along input channels, as
// aimc did before 0.2.0 (load_checkpoint sets it for those files).
std::shared_ptr<Sequential> build_model_from_description(const nlohmann::json& description, Generator& gen);

// {"model": name} for a known name (ConfigError otherwise).
nlohmann::json model_description(const std::string& name);

// The input shape of one sample, e.g. {1, 28, 28}.
Shape model_input_shape(const std::string& name);

}  // namespace aimc
