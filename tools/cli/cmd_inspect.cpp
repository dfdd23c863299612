// `aimc inspect`: how a model maps onto analog tiles under an RPU config —
// each convertible layer's tile grid (tile shapes, count, utilisation of the
// physical tile) and the totals. Convolutions split by element as
// convert_to_analog makes them (AnalogConvNd), or with --mapped along whole
// input channels as convert_to_analog_mapped makes them (AnalogConvNdMapped).
#include <cstdio>
#include <functional>
#include <variant>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/generator.h"
#include "layers/config/presets.h"
#include "layers/modules/conv.h"
#include "layers/modules/linear.h"
#include "layers/tiles/analog_core.h"
#include "layers/tiles/split.h"
#include "tools/cli/commands.h"

namespace aimc::cli {
namespace {

struct LayerGrid {
  std::string name, type;
  std::int64_t groups = 1;  // independent tile grids (grouped convolution)
  TileGrid grid;
};

std::string pieces_str(const std::vector<std::int64_t>& p) {
  std::string s = "[";
  for (std::size_t i = 0; i < p.size(); ++i) s += (i ? ", " : "") + std::to_string(p[i]);
  return s + "]";
}

// The largest tile of the config (tile_size_limits; 0: a layer's full size).
struct TileLimits {
  int max_output_size, max_input_size;
};

// Walks the model depth first, in registration order.
// The analog layer types the conversion makes are listed.
void collect(const std::string& prefix, const std::shared_ptr<Module>& m, const TileLimits& mapping, bool mapped,
             std::vector<LayerGrid>& out) {
  if (auto* lin = dynamic_cast<Linear*>(m.get())) {
    out.push_back({prefix, "AnalogLinear", 1,
                   make_tile_grid(lin->out_features(), lin->in_features(), mapping.max_output_size,
                                  mapping.max_input_size)});
  } else if (auto* conv = dynamic_cast<ConvNd*>(m.get())) {
    const auto& g = conv->geometry();
    std::int64_t kv = 1;
    for (auto k : g.kernel) kv *= k;
    const std::int64_t out_size = conv->out_channels() / g.groups, in_channels = conv->in_channels() / g.groups;
    out.push_back({prefix, "Analog" + conv->type_name() + (mapped ? "Mapped" : ""), g.groups,
                   mapped ? make_conv_tile_grid(out_size, in_channels, kv, mapping.max_output_size,
                                                mapping.max_input_size)
                          : make_tile_grid(out_size, in_channels * kv, mapping.max_output_size,
                                           mapping.max_input_size)});
  }
  for (const auto& [name, child] : m->named_children())
    collect(prefix.empty() ? name : prefix + "." + name, child, mapping, mapped, out);
}

}  // namespace

Runner add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Show how a model's layers map onto analog tiles");
  auto common = std::make_shared<CommonOptions>();
  auto model_name = std::make_shared<std::string>("lenet5");
  auto rpu = std::make_shared<std::string>("InferenceRPUConfig");
  auto mapped = std::make_shared<bool>(false);
  auto* model_opt = cmd->add_option("--model", *model_name, "Model name (see aimc train --help)")->capture_default_str();
  auto checkpoint = std::make_shared<std::string>();
  cmd->add_option("--checkpoint", *checkpoint,
                  "Inspect this checkpoint's model instead (aimc train --out, aimc import --out; analog layers "
                  "by their digital form)")
      ->excludes(model_opt);
  cmd->add_option("--rpu-config", *rpu, "RPU config: a JSON file, a preset or a family name")->capture_default_str();
  cmd->add_flag("--mapped", *mapped,
                 "Map as convert_to_analog_mapped: convolutions split along whole input channels "
                 "(AnalogConv2dMapped); default as convert_to_analog: split by element");
  add_common_options(*cmd, *common);
  return [common, model_name, rpu, mapped, checkpoint] {
    apply_common_options(*common);
    const RPUConfig config = resolve_rpu_config(*rpu);
    const auto [max_out, max_in] = tile_size_limits(config);
    const TileLimits mapping{max_out, max_in};
    Generator gen(common->seed, 1);
    std::shared_ptr<Module> model;
    if (checkpoint->empty()) {
      model = build_model(*model_name, gen);
    } else {
      Checkpoint ck = load_checkpoint(*checkpoint);  // IoError (exit 2) when missing or garbled
      model = convert_to_digital(ck.model, gen);
      *model_name = ck.description.value("model", ck.model->type_name());
    }
    std::vector<LayerGrid> layers;
    collect("", model, mapping, *mapped, layers);

    std::int64_t total_tiles = 0, total_weights = 0;
    double physical_cells = 0;
    nlohmann::json json_layers = nlohmann::json::array();
    if (!common->json)
      std::printf("%-12s %-18s %-14s %-7s %-22s %-22s %s\n", "layer", "type", "matrix", "tiles", "tile rows",
                  "tile cols", "utilisation");
    for (const auto& l : layers) {
      const auto& g = l.grid;
      const std::int64_t tiles = g.tiles() * l.groups;
      total_tiles += tiles;
      total_weights += g.out_size * g.in_size * l.groups;
      physical_cells += double(g.out_size * g.in_size * l.groups) / g.utilisation();
      const std::string matrix = (l.groups > 1 ? std::to_string(l.groups) + "x" : "") + "[" +
                                 std::to_string(g.out_size) + ", " + std::to_string(g.in_size) + "]";
      if (!common->json)
        std::printf("%-12s %-18s %-14s %-7lld %-22s %-22s %.3f\n", l.name.c_str(), l.type.c_str(), matrix.c_str(),
                    static_cast<long long>(tiles), pieces_str(g.out_pieces).c_str(),
                    pieces_str(g.in_pieces).c_str(), g.utilisation());
      json_layers.push_back({{"name", l.name}, {"type", l.type}, {"groups", l.groups},
                             {"matrix", {g.out_size, g.in_size}}, {"tiles", tiles},
                             {"tile_rows", g.out_pieces}, {"tile_cols", g.in_pieces},
                             {"utilisation", g.utilisation()}});
    }
    const double utilisation = physical_cells > 0 ? double(total_weights) / physical_cells : 1.0;
    nlohmann::json result = {{"model", *model_name},
                             {"rpu_config", config.family()},
                             {"mapped", *mapped},
                             {"physical_tile", {mapping.max_output_size, mapping.max_input_size}},
                             {"layers", json_layers},
                             {"total_tiles", total_tiles},
                             {"total_weights", total_weights},
                             {"utilisation", utilisation}};
    if (common->json) {
      print_json(result);
    } else {
      auto side = [](int s) { return s > 0 ? std::to_string(s) : std::string("unbounded"); };
      std::printf("total: %zu analog layers, %lld tiles of at most %s x %s, %lld weights, utilisation %.3f\n",
                  layers.size(), static_cast<long long>(total_tiles), side(mapping.max_output_size).c_str(),
                  side(mapping.max_input_size).c_str(), static_cast<long long>(total_weights), utilisation);
    }
  };
}

}  // namespace aimc::cli
