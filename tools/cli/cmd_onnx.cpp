// `aimc import` and `aimc export`: ONNX files in and out (convert/onnx_io.h).
//
//   aimc import model.onnx --out model.safetensors [--input-shape 1,28,28 (once per graph input)]
//   aimc export --checkpoint model.safetensors --out model.onnx [--input-shape 1,28,28]
//
// import writes a checkpoint with the imported Graph's architecture, so eval,
// drift and train --init accept it; its description records the input shape.
#include <charconv>
#include <cstdio>
#include <sstream>

#include "convert/checkpoint.h"
#include "convert/onnx_io.h"
#include "engine/error.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_checks.h"

namespace aimc::cli {

namespace {

// "1,28,28" -> {1, 28, 28}; UsageError naming the flag otherwise.
std::vector<std::int64_t> parse_shape(const std::string& text) {
  std::vector<std::int64_t> out;
  std::stringstream ss(text);
  std::string part;
  while (std::getline(ss, part, ',')) {
    std::int64_t v = 0;
    const char* end = part.data() + part.size();
    const auto [ptr, ec] = std::from_chars(part.data(), end, v);
    if (part.empty() || ec != std::errc() || ptr != end || v < 1 || v > kOnnxMaxDim)
      throw UsageError("--input-shape: expected comma-separated integers in [1, " + std::to_string(kOnnxMaxDim) +
                       "], one sample's shape without the batch (got " + quote_value(text) + ")");
    out.push_back(v);
  }
  if (out.empty() || out.size() > 8)
    throw UsageError("--input-shape: expected 1 to 8 dims (got " + quote_value(text) + ")");
  return out;
}

}  // namespace

void check_dataset_input(const nlohmann::json& description, const std::string& checkpoint) {
  if (!description.is_object()) return;
  if (description.contains("input_shapes") && description["input_shapes"].is_array() &&
      description["input_shapes"].size() > 1) {
    std::string shapes;
    for (const auto& s : description["input_shapes"])
      shapes += (shapes.empty() ? "" : ", ") + std::string("[N, ") + (s.is_array() ? s.dump().substr(1) : s.dump());
    throw UsageError("checkpoint " + checkpoint + " takes " + std::to_string(description["input_shapes"].size()) +
                     " inputs (" + shapes +
                     "), the datasets give one, [N, 1, 28, 28] (MNIST-style); run it with your own data through "
                     "the library (Graph::forward with one tensor per input)");
  }
  if (!description.contains("input_shape")) return;
  const nlohmann::json& shape = description["input_shape"];
  if (shape != nlohmann::json({1, 28, 28}))
    throw UsageError("checkpoint " + checkpoint + " takes inputs of shape [N, " +
                     (shape.is_array() ? shape.dump().substr(1) : shape.dump() + "]") +
                     ", the datasets' images are [N, 1, 28, 28] (MNIST-style); evaluate it with your own data "
                     "through the library (convert/onnx_io.h)");
}

Runner add_import_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "Import an ONNX model as a checkpoint (its digital weights)");
  auto common = std::make_shared<CommonOptions>();
  auto in = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto shapes = std::make_shared<std::vector<std::string>>();
  cmd->add_option("model", *in, "The ONNX file")->required();
  cmd->add_option("--out", *out, "The checkpoint to write (safetensors)")->required();
  cmd->add_option("--input-shape", *shapes,
                  "One sample's input shape without the batch, e.g. 1,28,28 (default: the model's declared shape); "
                  "for a model of several inputs, once per input in the file's order")
      ->allow_extra_args(false)  // one shape per --input-shape; the flag repeats
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  add_common_options(*cmd, *common);
  return [common, in, out, shapes] {
    apply_common_options(*common);
    check_output_file("--out", *out);
    require_onnx_support();
    OnnxImportOptions options;
    for (const auto& shape : *shapes) options.input_shapes.push_back(parse_shape(shape));
    OnnxModel m = import_onnx(*in, options);
    nlohmann::json description = {{"input_shape", m.input_shape}, {"onnx", m.info}};
    if (m.input_shapes.size() > 1) description["input_shapes"] = m.input_shapes;
    save_checkpoint(*out, *m.graph, description);
    std::int64_t params = 0, modules = 0;
    for (const auto& [name, t] : m.graph->named_parameters()) params += t.numel();
    for (const auto& node : m.graph->nodes()) modules += node.module ? 1 : 0;
    if (!common->json) {
      std::printf("imported %s (%s, opset %d): %lld nodes -> %zu graph nodes (%lld layers), %lld parameters; "
                  "wrote %s\n",
                  in->c_str(), m.info.value("producer", "").c_str(), m.info.value("opset", 0),
                  static_cast<long long>(m.info.value("nodes", 0)), m.graph->nodes().size(),
                  static_cast<long long>(modules), static_cast<long long>(params), out->c_str());
    } else {
      print_json({{"model", *in},
                  {"out", *out},
                  {"input_shape", m.input_shape},
                  {"input_shapes", m.input_shapes},
                  {"onnx", m.info},
                  {"graph_nodes", m.graph->nodes().size()},
                  {"layers", modules},
                  {"parameters", params}});
    }
  };
}

Runner add_export_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("export", "Export a checkpoint's model as ONNX (analog layers as their digital weights)");
  auto common = std::make_shared<CommonOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto shape = std::make_shared<std::string>();
  cmd->add_option("--checkpoint", *checkpoint, "Checkpoint (aimc train --out or aimc import --out)")->required();
  cmd->add_option("--out", *out, "The ONNX file to write")->required();
  cmd->add_option("--input-shape", *shape,
                  "One sample's input shape without the batch (default: the checkpoint's, else 1,28,28)");
  add_common_options(*cmd, *common);
  return [common, checkpoint, out, shape] {
    apply_common_options(*common);
    check_output_file("--out", *out);
    require_onnx_support();  // before reading the checkpoint
    Checkpoint ck = load_checkpoint(*checkpoint);
    std::vector<std::int64_t> input_shape{1, 28, 28};
    if (!shape->empty()) {
      input_shape = parse_shape(*shape);
    } else if (ck.description.contains("input_shape")) {
      try {
        input_shape = ck.description["input_shape"].get<std::vector<std::int64_t>>();
      } catch (const nlohmann::json::exception&) {
        throw IoError(*checkpoint + ": description.input_shape is not a list of integers");
      }
    }
    export_onnx(*ck.model, input_shape, *out);
    if (!common->json)
      std::printf("exported %s to %s (input [N, %s])\n", checkpoint->c_str(), out->c_str(),
                  nlohmann::json(input_shape).dump().c_str());
    else
      print_json({{"checkpoint", *checkpoint}, {"out", *out}, {"input_shape", input_shape}});
  };
}

}  // namespace aimc::cli
