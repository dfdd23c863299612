// `aimc train`: trains a model on an MNIST-format dataset, evaluates it on the
// test split and optionally saves a checkpoint. With --checkpoint-every the
// checkpoint is rewritten during the run; SIGINT/SIGTERM stop it after the
// current step with a checkpoint, and --resume continues a saved run to the
// same bits as an uninterrupted one.
//
// Under `mpirun -n K` it trains data-parallel (--shards S, a multiple of K;
// tools/training/trainer.h): every rank loads the data and builds the same
// model, runs its shards of each batch, and takes the same step; rank 0
// alone prints (main.cpp silences the others' stdout) and writes the
// checkpoint. The weights depend on S, never on K.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>

#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "layers/config/presets.h"
#include "convert/models.h"
#include "engine/communicator.h"
#include "engine/generator.h"
#include "tools/cli/commands.h"
#include "tools/cli/option_checks.h"
#include "tools/cli/progress.h"
#include "tools/cli/stop_signals.h"
#include "tools/training/run_state.h"
#include "tools/training/trainer.h"

namespace aimc::cli {
namespace {

// Flags whose value shapes the trained bits, with their key in the training
// state's "options": on --resume each is taken from the checkpoint, and a
// different value given on the command line is refused.
struct FixedFlag {
  const char* flag;
  const char* key;
};
constexpr FixedFlag kFixedFlags[] = {
    {"--model", "model"},         {"--dataset", "dataset"},
    {"--batch-size", "batch_size"}, {"--optimizer", "optimizer"},
    {"--lr", "lr"},               {"--momentum", "momentum"},
    {"--weight-decay", "weight_decay"}, {"--schedule", "schedule"},
    {"--step-size", "step_size"}, {"--gamma", "gamma"},
    {"--seed", "seed"},           {"--limit-train", "limit_train"},
    {"--limit-test", "limit_test"},  // evaluations draw from analog tiles' streams
    {"--shards", "shards"},
};

UsageError differs(const std::string& flag, const std::string& given, const std::string& saved,
                   const std::string& path, const std::string& why = "") {
  return UsageError(flag + " " + given + " differs from " + saved + " in the checkpoint " + path + " (" +
                    (why.empty() ? "" : why + "; ") + "--resume continues the saved run with its own value; drop " +
                    flag + ")");
}

}  // namespace

Runner add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a model and report its test accuracy");
  auto common = std::make_shared<CommonOptions>();
  auto opts = std::make_shared<training::TrainOptions>();
  auto out = std::make_shared<std::string>();
  auto rpu = std::make_shared<std::string>();
  auto eval_each_epoch = std::make_shared<bool>(false);
  auto* model_opt = cmd->add_option("--model", opts->model, "Model: mlp, mlp_sigmoid, lenet5, vgg_small, resnet20, resnet32")
      ->capture_default_str();
  auto init_from = std::make_shared<std::string>();
  cmd->add_option("--init", *init_from,
                  "Fine-tune: start from the model and weights of this checkpoint (aimc import --out, another "
                  "run's --out; analog layers by their exact weights) instead of --model; with --rpu-config its "
                  "layers go onto analog tiles (hardware-aware fine-tuning)")
      ->excludes(model_opt);
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
  cmd->add_option("--shards", opts->shards,
                  "Data-parallel shards of each batch (a multiple of the processes of mpirun -n, dividing "
                  "--batch-size): the trained bits depend on it, not on the number of processes; 1: one process")
      ->check(integer_range<std::int64_t>(1, kMaxBatchSize))
      ->capture_default_str();
  cmd->add_flag("--eval-each-epoch", *eval_each_epoch,
                "Evaluate the test accuracy after every epoch (reported per epoch in the JSON history)");
  auto every = std::make_shared<std::int64_t>(0);
  auto resume = std::make_shared<std::string>();
  auto stop_after = std::make_shared<std::int64_t>(0);
  cmd->add_option("--checkpoint-every", *every,
                  "With --out: also write the checkpoint every N optimizer steps and at the end of each epoch "
                  "(atomically; it can be resumed)")
      ->check(integer_range<std::int64_t>(1, INT64_MAX));
  cmd->add_option("--resume", *resume,
                  "Continue the run saved in this checkpoint (written by train --out): model, optimizer, "
                  "schedule and data position come from it, and so do the options that shape the result "
                  "(model, seed, batch size, rpu config, optimizer, lr, ...; a different value given is refused). "
                  "--epochs may grow when the schedule does not depend on it (none, or step with --step-size). "
                  "--out defaults to this file. The result equals the uninterrupted run bit for bit");
  cmd->add_option("--stop-after-steps", *stop_after,
                  "Testing aid: act as if SIGINT arrived after N optimizer steps of this invocation")
      ->check(integer_range<std::int64_t>(1, INT64_MAX));
  cmd->footer(
      "Interruption: SIGINT or SIGTERM stops training after the current step, writes the checkpoint (with "
      "--out), prints how to resume and exits with status 130 (SIGINT) or 143 (SIGTERM).");
  add_common_options(*cmd, *common);
  add_device_option(*cmd, *common);

  return [cmd, common, opts, out, rpu, eval_each_epoch, every, resume, stop_after, init_from] {
    apply_common_options(*common);
    const Device device = parse_device(common->device);
    // Digital and analog models train on the GPU; data-parallel shards still
    // run on the CPU only (refused before the data load).
    if (device.is_cuda() && opts->shards > 1)
      throw DeviceError("aimc train --device " + common->device + " --shards " + std::to_string(opts->shards) +
                        ": data-parallel shards run on the CPU only; use --shards 1 or --device cpu");
    const Communicator& comm = Communicator::world();
    opts->seed = common->seed;
    if (!resume->empty() && out->empty()) *out = *resume;  // a resumed run keeps writing its checkpoint
    if (!resume->empty() && !init_from->empty())
      throw UsageError("--init and --resume exclude each other (--resume continues the saved run's own model)");
    if (!out->empty() && comm.is_root()) check_output_file("--out", *out);  // before the work, not after it
    if (cmd->count("--checkpoint-every") > 0 && out->empty())
      throw UsageError("--checkpoint-every needs --out (the checkpoint file to write)");

    // A resumed run: the saved state and the options it fixes.
    std::optional<Checkpoint> saved;
    training::RunState state;
    if (!resume->empty()) {
      saved = load_checkpoint(*resume);  // IoError (exit 2) when missing or garbled
      if (saved->training_state.is_null())
        throw UsageError("--resume " + *resume +
                         ": the checkpoint holds no training state (no \"aimc.training\" metadata: it was written "
                         "before aimc train saved its run state), so its run cannot be continued");
      try {
        state = training::run_state_from_json(saved->training_state);
      } catch (const Error& e) {
        throw IoError("invalid checkpoint " + *resume + ": " + e.what());
      }
      const std::string saved_model = saved->description.value("model", std::string());
      if (state.options.model != saved_model)
        throw IoError("invalid checkpoint " + *resume + ": the training state's model '" + state.options.model +
                      "' is not the saved model '" + saved_model + "'");
      training::RunState given = state;
      given.options = *opts;
      given.options.seed = common->seed;
      const nlohmann::json mine = training::run_state_to_json(given)["options"];
      const nlohmann::json theirs = training::run_state_to_json(state)["options"];
      for (const auto& f : kFixedFlags)
        if (cmd->count(f.flag) > 0 && mine[f.key] != theirs[f.key])
          throw differs(f.flag, mine[f.key].dump(), theirs[f.key].dump(), *resume);
      if (*eval_each_epoch && !state.eval_each_epoch)
        throw differs("--eval-each-epoch", "(on)", "off", *resume);
      if (!rpu->empty()) {
        const nlohmann::json wanted = resolve_rpu_config(*rpu).to_json();
        if (!saved->description.contains("rpu_config") || saved->description["rpu_config"] != wanted)
          throw differs("--rpu-config", *rpu,
                        saved->description.contains("rpu_config")
                            ? "the saved rpu config (" + saved->description["rpu_config"].value("family", "?") + ")"
                            : "digital training",
                        *resume);
      }
      std::int64_t epochs = state.options.epochs;
      if (cmd->count("--epochs") > 0 && opts->epochs != epochs) {
        // The cosine schedule (and step's default step size) derive each epoch's lr from the run's length.
        if (state.options.schedule == "cosine" || (state.options.schedule == "step" && state.options.step_size == 0))
          throw differs("--epochs", std::to_string(opts->epochs), std::to_string(epochs), *resume,
                        "the " + state.options.schedule + " schedule's lr depends on the number of epochs");
        if (opts->epochs < state.epoch)
          throw UsageError("--epochs " + std::to_string(opts->epochs) + ": the checkpoint " + *resume +
                           " has already finished " + std::to_string(state.epoch) + " epochs");
        epochs = opts->epochs;
      }
      if (state.options.batch_size > kMaxBatchSize || epochs > kMaxEpochs)
        throw IoError("invalid checkpoint " + *resume + ": batch size or epochs beyond the CLI's limits");
      *opts = state.options;
      opts->epochs = epochs;
      state.options.epochs = epochs;
      common->seed = state.options.seed;
      *eval_each_epoch = state.eval_each_epoch;
      if (cmd->count("--checkpoint-every") == 0) *every = state.checkpoint_every;
    }
    for (const char* flag : {"--step-size", "--gamma"})
      if (cmd->count(flag) > 0 && opts->schedule != "step")
        throw UsageError(std::string(flag) + " applies to --schedule step only (the schedule is " + opts->schedule +
                         ")");
    training::check_schedule_options(*opts);  // before the data load, so bad values fail fast
    state.eval_each_epoch = *eval_each_epoch;
    state.checkpoint_every = *every;

    const auto start = std::chrono::steady_clock::now();
    const std::string dir = data::dataset_dir(opts->dataset);
    data::Dataset train = data::load_mnist_split(dir, "train");
    data::Dataset test = data::load_mnist_split(dir, "t10k");
    if (opts->limit_train > 0) train = data::head(train, opts->limit_train);
    if (opts->limit_test > 0) test = data::head(test, opts->limit_test);

    // Streams of the seed: 1 model init, 2 data order, 3 dropout and other training noise.
    std::shared_ptr<Module> model;
    nlohmann::json description;
    std::optional<RPUConfig> config;
    if (saved) {
      model = saved->model;  // its tiles' states and random-stream counters included
      description = saved->description;
      description.erase("training");  // the finished run's summary; rewritten at the end
    } else {
      if (!init_from->empty()) {
        // A model of one's own (no model name: the architecture saved with it rebuilds it).
        Checkpoint c = load_checkpoint(*init_from);  // IoError (exit 2) when missing or garbled
        check_dataset_input(c.description, *init_from);
        Generator digital_gen(common->seed, kAnalogConversionStream);
        model = convert_to_digital(c.model, digital_gen);
        description = {{"init", *init_from}};
        if (c.description.contains("input_shape")) description["input_shape"] = c.description["input_shape"];
        opts->model.clear();
      } else {
        Generator init(common->seed, 1);
        model = build_model(opts->model, init);
        description = {{"model", opts->model}};
      }
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
      state.options = *opts;
    }
    training::check_shard_options(*opts, comm.size());
    auto optimizer = training::make_optimizer(*opts, *model);
    auto scheduler = training::make_scheduler(*opts, *optimizer);  // before the state: it records the base lr
    if (saved) {
      if (!saved->optimizer.is_object() || saved->optimizer.value("type", "") != optimizer->type_name())
        throw IoError("invalid checkpoint " + *resume + ": its optimizer state is not " + optimizer->type_name() +
                      "'s (" + saved->optimizer.dump() + ")");
      try {
        optimizer->load_state(saved->optimizer_state);
      } catch (const Error& e) {
        throw IoError("invalid checkpoint " + *resume + ": " + e.what());
      }
      if (!common->json || stdout_is_terminal())
        std::printf("resuming %s at epoch %lld step %lld\n", resume->c_str(),
                    static_cast<long long>(state.epoch + 1), static_cast<long long>(state.position.next_batch));
    }
    // The parameters, buffers and optimizer state move in place (the optimizer
    // holds the same parameter handles); train_epoch moves each batch.
    model->to(device);
    optimizer->to(device);
    data::BatchLoader loader(train, opts->batch_size, /*shuffle=*/true, Generator(common->seed, 2));
    if (state.position.next_batch > loader.num_batches() ||
        (state.position.next_batch == loader.num_batches() && state.position.next_batch > 0))
      throw IoError("invalid checkpoint " + (resume->empty() ? *out : *resume) + ": batch " +
                    std::to_string(state.position.next_batch) + " is past the epoch's " +
                    std::to_string(loader.num_batches()));

    auto save = [&] {
      if (!comm.is_root()) return;  // one writer: rank 0
      save_checkpoint(*out, *model, description, optimizer.get(), training::run_state_to_json(state));
    };
    std::int64_t steps_here = 0;  // optimizer steps of this invocation
    auto stop_requested = [&] { return stop_signal() != 0 || (*stop_after > 0 && steps_here >= *stop_after); };

    ProgressBar bar(stderr_is_terminal() && comm.is_root());
    training::EpochStats last;
    if (!state.history.empty()) last.train_loss = state.history.back().value("train_loss", 0.0);
    nlohmann::json& history = state.history;  // one entry per epoch: its lr, loss and time
    std::optional<std::pair<std::int64_t, std::int64_t>> interrupted;  // (epoch, step), 1-based epoch
    {
      StopSignals signals;
      while (state.epoch < opts->epochs) {
        const std::int64_t epoch = state.epoch;
        if (scheduler) scheduler->set_epoch(epoch);
        const double epoch_lr = optimizer->lr();
        const auto t0 = std::chrono::steady_clock::now();
        const std::int64_t first = state.position.next_batch;
        const std::int64_t batches = loader.num_batches();
        const std::string label = "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(opts->epochs);
        auto after_step = [&](std::int64_t, const training::EpochPosition& at) {
          ++state.global_step;
          ++steps_here;
          const bool stop = stop_requested();
          // Mid-epoch saves here; the end of the epoch saves below, after its bookkeeping.
          if (!stop && *every > 0 && state.global_step % *every == 0 && at.next_batch < batches) save();
          return stop;
        };
        last = training::train_epoch(
            *model, *optimizer, loader, epoch, state.position,
            [&](std::int64_t, std::int64_t b, std::int64_t nb, double loss) {
              const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
              bar.update(label, b, nb, loss, double((b - first) * opts->batch_size) / std::max(secs, 1e-9));
            },
            after_step, opts->shards);
        bar.finish();
        if (state.position.next_batch < batches) {
          interrupted.emplace(epoch + 1, state.position.next_batch);
          break;
        }
        history.push_back({{"epoch", epoch + 1}, {"lr", epoch_lr}, {"train_loss", last.train_loss},
                           {"seconds", last.seconds}});
        std::string epoch_accuracy;
        if (*eval_each_epoch && epoch + 1 < opts->epochs) {
          const double a = training::evaluate_accuracy(*model, test);
          history.back()["test_accuracy"] = a;
          epoch_accuracy = "  test_accuracy " + std::to_string(a).substr(0, 6);
        }
        ++state.epoch;
        state.position = {};
        if (*every > 0 && state.epoch < opts->epochs) save();  // the last epoch's is the final save
        if (!common->json || stdout_is_terminal())
          std::printf("epoch %lld/%lld  lr %g  train_loss %.4f  %.1f s%s\n", static_cast<long long>(epoch + 1),
                      static_cast<long long>(opts->epochs), epoch_lr, last.train_loss, last.seconds,
                      epoch_accuracy.c_str());
        std::fflush(stdout);
        bool stop = stop_requested();
        if (comm.size() > 1)  // all ranks stop at the same epoch end (a signal may reach them apart)
          for (const std::string& s : comm.allgather(stop ? "1" : "0")) stop = stop || s == "1";
        if (state.epoch < opts->epochs && stop) {
          interrupted.emplace(epoch + 1, batches);
          break;
        }
      }
    }
    if (interrupted) {
      const int signo = stop_signal();
      std::string where = "epoch " + std::to_string(interrupted->first) + " step " +
                          std::to_string(interrupted->second) + "/" + std::to_string(loader.num_batches());
      if (comm.is_root() && !out->empty()) {  // rank 0 alone saves and tells
        save();
        std::fprintf(stderr, "aimc: interrupted at %s; checkpoint written to %s; resume with: aimc train --resume %s\n",
                     where.c_str(), out->c_str(), out->c_str());
      } else if (comm.is_root()) {
        std::fprintf(stderr, "aimc: interrupted at %s; no checkpoint written (no --out), the run cannot be resumed\n",
                     where.c_str());
      }
      std::fflush(stdout);
      throw Interrupted{interrupted_status(signo)};
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
    if (!out->empty()) save();

    if (!common->json) {
      std::printf("test_accuracy %.4f  (%lld test samples, %.1f s)\n", accuracy,
                  static_cast<long long>(test.size()), seconds);
      if (!out->empty()) std::printf("checkpoint written to %s\n", out->c_str());
    } else {
      nlohmann::json result = {{"test_accuracy", accuracy}, {"train_loss", last.train_loss},
                               {"epochs", opts->epochs},   {"seconds", seconds},
                               {"model", opts->model},     {"seed", common->seed},
                               {"lr", opts->lr},           {"ranks", comm.size()},
                               {"shards", opts->shards}};
      result["schedule"] = opts->schedule;
      if (opts->schedule == "step") {
        result["step_size"] = training::effective_step_size(*opts);
        result["gamma"] = opts->gamma;
      }
      result["history"] = history;
      if (description.contains("rpu_config")) result["rpu_config"] = description["rpu_config"]["family"];
      if (!out->empty()) result["checkpoint"] = *out;
      print_json(result);
    }
  };
}

}  // namespace aimc::cli
