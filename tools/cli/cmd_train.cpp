// `aimc train`: trains a model on an MNIST-format dataset, evaluates it on the
// test split and optionally saves a checkpoint.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "layers/config/presets.h"
#include "convert/models.h"
#include "engine/generator.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_checks.h"
#include "tools/cli/progress.h"
#include "tools/training/trainer.h"

namespace aimc::cli {

Runner add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model and report its test accuracy");
  auto common = std::make_shared<CommonOptions>();
  auto opts = std::make_shared<training::TrainOptions>();
  auto out = std::make_shared<std::string>();
  auto rpu = std::make_shared<std::string>();
  auto eval_each_epoch = std::make_shared<bool>(false);
  cmd->add_option("--model", opts->model, "Model: mlp, mlp_sigmoid, lenet5, vgg_small, resnet20, resnet32")
      ->capture_default_str();
  cmd->add_option("--dataset", opts->dataset, "fashion-mnist[:DIR] or mnist:DIR")->capture_default_str();
  cmd->add_option("--epochs", opts->epochs, "Training epochs")
      ->check(integer_range<std::int64_t>(1, kMaxEpochs))
      ->capture_default_str();
  cmd->add_option("--batch-size", opts->batch_size, "Mini-batch size")
      ->check(integer_range<std::int64_t>(1, kMaxBatchSize))
      ->capture_default_str();
  cmd->add_option("--lr", opts->lr,
                  "Learning rate (default 0.002; 0.02 for hardware-aware training on normalised tiles, "
                  "mapping.weight_scaling_omega > 0)")
      ->check(real_range(0, 10, Ends::kOpenLow));
  cmd->add_option("--optimizer", opts->optimizer, "sgd or adam")->check(CLI::IsMember({"sgd", "adam"}))->capture_default_str();
  cmd->add_option("--momentum", opts->momentum, "SGD momentum")
      ->check(real_range(0, 1, Ends::kOpenHigh))
      ->capture_default_str();
  cmd->add_option("--weight-decay", opts->weight_decay, "L2 weight decay")
      ->check(real_range(0, 1))
      ->capture_default_str();
  cmd->add_option("--schedule", opts->schedule, "Learning-rate schedule per epoch: none, step, cosine")
      ->check(CLI::IsMember({"none", "step", "cosine"}))
      ->capture_default_str();
  cmd->add_option("--step-size", opts->step_size,
                  "With --schedule step: epochs between lr decays (default max(1, epochs/3))")
      ->check(integer_range<std::int64_t>(1, kMaxEpochs));
  cmd->add_option("--gamma", opts->gamma, "With --schedule step: lr multiplier at each decay")
      ->check(real_range(0, 1, Ends::kOpenLow))
      ->capture_default_str();
  add_sample_limit(*cmd, "--limit-train", opts->limit_train, "training");
  add_sample_limit(*cmd, "--limit-test", opts->limit_test, "test");
  cmd->add_option("--out", *out, "Write a checkpoint (safetensors) here; its directory must exist");
  cmd->add_option("--rpu-config", *rpu,
                  "Train on analog tiles: a JSON file, a preset (StandardHWATrainingPreset, ReRamSBPreset, ...) or a "
                  "family name (InferenceRPUConfig: hardware-aware; SingleRPUConfig: on pulsed devices, with "
                  "--optimizer sgd)");
  cmd->add_flag("--eval-each-epoch", *eval_each_epoch,
                "Evaluate the test accuracy after every epoch (reported per epoch in the JSON history)");
  add_common_options(*cmd, *common);

  return [cmd, common, opts, out, rpu, eval_each_epoch] {
    apply_common_options(*common);
    opts->seed = common->seed;
    for (const char* flag : {"--step-size", "--gamma"})
      if (cmd->count(flag) > 0 && opts->schedule != "step")
        throw UsageError(std::string(flag) + " applies to --schedule step only (the schedule is " + opts->schedule +
                         ")");
    training::check_schedule_options(*opts);  // before the data load, so bad values fail fast
    if (!out->empty()) check_output_file("--out", *out);  // before the work, not after it
    const auto start = std::chrono::steady_clock::now();
    const std::string dir = data::dataset_dir(opts->dataset);
    data::Dataset train = data::load_mnist_split(dir, "train");
    data::Dataset test = data::load_mnist_split(dir, "t10k");
    if (opts->limit_train > 0) train = data::head(train, opts->limit_train);
    if (opts->limit_test > 0) test = data::head(test, opts->limit_test);

    // Streams of the seed: 1 model init, 2 data order, 3 dropout and other training noise.
    Generator init(common->seed, 1);
    auto model = build_model(opts->model, init);
    nlohmann::json description = {{"model", opts->model}};
    std::optional<RPUConfig> config;
    if (!rpu->empty()) {
      // Hardware-aware training: the same model on analog tiles.
      config = resolve_rpu_config(*rpu);
      Generator analog_gen(common->seed, kAnalogConversionStream);
      convert_to_analog(model, *config, analog_gen);
      description["rpu_config"] = config->to_json();
      description["analog_seed"] = common->seed;
    }
    if (cmd->count("--lr") == 0) {
      opts->lr = training::default_learning_rate(config ? &*config : nullptr);
      if (!common->json || stdout_is_terminal())
        std::printf("lr %g (default%s; --lr sets it)\n", opts->lr,
                    opts->lr != training::TrainOptions{}.lr
                        ? " for hardware-aware training on normalised tiles (mapping.weight_scaling_omega > 0)"
                        : "");
    }
    auto optimizer = training::make_optimizer(*opts, *model);
    auto scheduler = training::make_scheduler(*opts, *optimizer);
    data::BatchLoader loader(train, opts->batch_size, /*shuffle=*/true, Generator(common->seed, 2));

    ProgressBar bar(stderr_is_terminal());
    training::EpochStats last;
    nlohmann::json history = nlohmann::json::array();  // one entry per epoch: its lr, loss and time
    for (std::int64_t epoch = 0; epoch < opts->epochs; ++epoch) {
      if (scheduler) scheduler->set_epoch(epoch);
      const double epoch_lr = optimizer->lr();
      const auto t0 = std::chrono::steady_clock::now();
      const std::string label = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(opts->epochs);
      last = training::train_epoch(*model, *optimizer, loader, epoch,
                                   [&](std::int64_t, std::int64_t b, std::int64_t nb, double loss) {
                                     const double secs =
                                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                                     bar.update(label, b, nb, loss, double(b * opts->batch_size) / std::max(secs, 1e-9));
                                   });
      bar.finish();
      history.push_back({{"epoch", epoch + 1}, {"lr", epoch_lr}, {"train_loss", last.train_loss},
                         {"seconds", last.seconds}});
      std::string epoch_accuracy;
      if (*eval_each_epoch && epoch + 1 < opts->epochs) {
        const double a = training::evaluate_accuracy(*model, test);
        history.back()["test_accuracy"] = a;
        epoch_accuracy = "  test_accuracy " + std::to_string(a).substr(0, 6);
      }
      if (!common->json || stdout_is_terminal())
        std::printf("epoch %lld/%lld  lr %g  train_loss %.4f  %.1f s%s\n", static_cast<long long>(epoch + 1),
                    static_cast<long long>(opts->epochs), epoch_lr, last.train_loss, last.seconds,
                    epoch_accuracy.c_str());
      std::fflush(stdout);
    }
    const double accuracy = training::evaluate_accuracy(*model, test);
    if (*eval_each_epoch) history.back()["test_accuracy"] = accuracy;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    nlohmann::json training_info = {{"dataset", opts->dataset}, {"epochs", opts->epochs},
                                    {"batch_size", opts->batch_size}, {"optimizer", opts->optimizer},
                                    {"lr", opts->lr}, {"schedule", opts->schedule}, {"seed", common->seed},
                                    {"train_loss", last.train_loss}, {"test_accuracy", accuracy}};
    if (opts->schedule == "step") {
      training_info["step_size"] = training::effective_step_size(*opts);
      training_info["gamma"] = opts->gamma;
    }
    description["training"] = training_info;
    if (!out->empty()) save_checkpoint(*out, *model, description, optimizer.get());

    if (!common->json) {
      std::printf("test_accuracy %.4f  (%lld test samples, %.1f s)\n", accuracy,
                  static_cast<long long>(test.size()), seconds);
      if (!out->empty()) std::printf("checkpoint written to %s\n", out->c_str());
    } else {
      nlohmann::json result = {{"test_accuracy", accuracy}, {"train_loss", last.train_loss},
                               {"epochs", opts->epochs},   {"seconds", seconds},
                               {"model", opts->model},     {"seed", common->seed},
                               {"lr", opts->lr}};
      result["schedule"] = opts->schedule;
      if (opts->schedule == "step") {
        result["step_size"] = training::effective_step_size(*opts);
        result["gamma"] = opts->gamma;
      }
      result["history"] = history;
      if (!rpu->empty()) result["rpu_config"] = description["rpu_config"]["family"];
      if (!out->empty()) result["checkpoint"] = *out;
      print_json(result);
    }
  };
}

}  // namespace aimc::cli
