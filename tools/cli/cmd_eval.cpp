// `aimc eval`: rebuilds a model from a checkpoint alone and reports its test
// accuracy.
#include <chrono>
#include <cstdio>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "engine/generator.h"
#include "layers/config/presets.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_checks.h"
#include "tools/training/trainer.h"

namespace aimc::cli {

Runner add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a checkpoint on the test split");
  auto common = std::make_shared<CommonOptions>();
  auto checkpoint = std::make_shared<std::string>();
  auto dataset = std::make_shared<std::string>("fashion-mnist");
  auto limit = std::make_shared<std::int64_t>(0);
  auto rpu = std::make_shared<std::string>();
  cmd->add_option("--checkpoint", *checkpoint, "Checkpoint written by aimc train --out")->required();
  cmd->add_option("--dataset", *dataset, "fashion-mnist[:DIR] or mnist:DIR")->capture_default_str();
  add_sample_limit(*cmd, "--limit-test", *limit, "test");
  cmd->add_option("--rpu-config", *rpu,
                  "Evaluate on analog tiles with this RPU config instead of the checkpoint's own (JSON file, "
                  "preset or family name)");
  add_common_options(*cmd, *common);
  add_device_option(*cmd, *common);

  return [common, checkpoint, dataset, limit, rpu] {
    apply_common_options(*common);
    const auto start = std::chrono::steady_clock::now();
    Checkpoint loaded = load_checkpoint(*checkpoint);
    check_dataset_input(loaded.description, *checkpoint);
    std::string family = loaded.description.contains("rpu_config")
                             ? loaded.description["rpu_config"].value("family", "?")
                             : analog_family(*loaded.model);  // a model of one's own: its first analog layer's
    if (family.empty()) family = "digital";
    if (!rpu->empty()) {
      // Re-map the exact weights onto tiles of another config.
      const RPUConfig config = resolve_rpu_config(*rpu);
      Generator gen(common->seed, kAnalogConversionStream);
      loaded.model = convert_to_analog(convert_to_digital(loaded.model, gen), config, gen);
      family = config.family();
    }
    // The model's parameters, buffers and tile states move in place; the
    // engine names any op it cannot yet run there (DeviceError, exit 2).
    loaded.model->to(parse_device(common->device));
    data::Dataset test = data::load_mnist_split(data::dataset_dir(*dataset), "t10k");
    if (*limit > 0) test = data::head(test, *limit);
    const double accuracy = training::evaluate_accuracy(*loaded.model, test);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string model = loaded.description.value("model", loaded.model->type_name());
    if (!common->json) {
      std::printf("%s: test_accuracy %.4f (%lld samples, %.1f s)\n", model.c_str(), accuracy,
                  static_cast<long long>(test.size()), seconds);
    } else {
      print_json({{"test_accuracy", accuracy},
                  {"model", model},
                  {"rpu_config", family},
                  {"samples", test.size()},
                  {"seconds", seconds}});
    }
  };
}

}  // namespace aimc::cli
