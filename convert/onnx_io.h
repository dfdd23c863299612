// ONNX import and export: a model file of another framework as a Graph
// (layers/modules/graph.h), and a model of aimc as an ONNX file.
//
// Import (opsets 13 to 21 of the default domain), of one graph input or
// several (all with the batch first): float initializers of more than one
// element that Graph ops read (a LayerNorm's scale and bias, the bias Add
// after an N-D MatMul, a ConvTranspose's weight) become trainable parameters
// of the Graph, the other constants its buffers; Conv with constant weights
// becomes a Conv1d/2d/3d child, Gemm and MatMul with a constant 2-D weight a
// Linear child (so convert_to_analog maps them onto tiles),
// BatchNormalization a BatchNorm child, MaxPool/AveragePool a pooling child;
// the other operators become Graph ops. Scalars of the file and constants
// computed at import stay constants. (ONNX does not say which initializers
// were buffers: a float one of several elements, a mask say, trains too.) Nodes whose inputs are all constant are computed at import
// (constant folding), Shape included, so the Shape -> Gather -> Concat ->
// Reshape chains of PyTorch's exports fold to fixed reshapes. The shapes come
// from forward passes of zeros with the given input shape, run twice, with
// batch sizes 1 and 2: a dim of a reshape that differs between the two
// depends on the batch and is written as -1, so the imported graph takes any
// batch size, wherever the model keeps its batch. A model whose input
// declares a fixed batch size is run once with batch size 1, and a reshape
// that keeps the first dim keeps it free.
//
// Supported operators: see onnx_supported_ops(). An unsupported operator,
// attribute value or data type throws ConfigError naming the node, its op
// type and what is supported; a file that protobuf cannot parse, a missing or
// oversized file throws IoError; a cycle, an input that nothing provides, a
// declared dimension above kOnnxMaxDim or a tensor above kOnnxMaxElements
// throws ConfigError. Nothing is returned half built.
//
// Export writes the digital model (an analog layer as its digital weights)
// at opset 18 (20 when it has a GELU): a Graph (of one input and one
// output) node by node, a Sequential layer by layer, a BasicBlock as its
// convolutions, BatchNorms and residual Add; importing the file gives the same graph outputs, bit for
// bit.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "layers/modules/graph.h"

namespace aimc {

// Bounds for untrusted files (as the safetensors reader's).
inline constexpr std::int64_t kOnnxMaxFileBytes = std::int64_t{2} << 30;      // protobuf's own 2 GiB limit
inline constexpr std::int64_t kOnnxMaxDim = std::int64_t{1} << 24;             // any one declared dimension
inline constexpr std::int64_t kOnnxMaxElements = std::int64_t{1} << 26;        // any one tensor (256 MiB of float32)
inline constexpr std::int64_t kOnnxMaxNodes = 100000;

struct OnnxImportOptions {
  // One sample's input shape (without the batch dimension) for a model of one
  // input; empty: the model's declared input shape, which must then be fixed
  // (batch aside).
  std::vector<std::int64_t> input_shape;
  // The same for each graph input in the file's order (a model of several
  // inputs; an empty entry takes that input's declared shape). When given,
  // it has one entry per input and input_shape is ignored.
  std::vector<std::vector<std::int64_t>> input_shapes;
};

struct OnnxModel {
  std::shared_ptr<Graph> graph;  // in eval mode; its inputs are the file's, in order
  std::vector<std::int64_t> input_shape;  // the first input's, one sample's (without batch)
  std::vector<std::vector<std::int64_t>> input_shapes;  // every input's
  nlohmann::json info;  // {"producer", "opset", "ir_version", "nodes"}
};

// Whether this build has ONNX support (meson option `onnx`).
bool onnx_available();
// ConfigError "built without ONNX support" unless it has.
void require_onnx_support();
// The ONNX op types import_onnx understands.
std::vector<std::string> onnx_supported_ops();

// The model in `path` (ConfigError "built without ONNX support" in a build
// without it).
OnnxModel import_onnx(const std::string& path, const OnnxImportOptions& options = {});
// The same from the file's bytes; `name` labels messages.
OnnxModel import_onnx_bytes(const std::string& bytes, const OnnxImportOptions& options = {},
                            const std::string& name = "ONNX model");

// The serialized ONNX model of `model` (eval mode) for inputs of one sample's
// shape `input_shape` (a dynamic batch dimension "N" in front). ConfigError
// for a module type or graph op that has no ONNX form.
std::string export_onnx_bytes(Module& model, const std::vector<std::int64_t>& input_shape);
// Writes it to `path` (IoError on failure).
void export_onnx(Module& model, const std::vector<std::int64_t>& input_shape, const std::string& path);

}  // namespace aimc
