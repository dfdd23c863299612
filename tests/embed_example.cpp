// A program that embeds aimc through the installed headers and pkg-config:
//   g++ -std=c++20 embed_example.cpp $(pkg-config --cflags --libs aimc)
// Trains y = 2x - 1 with one Linear layer and prints the learned weight, then
// deploys a small model on PCM-like analog tiles and drifts it for a day (the
// README's inference example), trains it one AnalogSGD step on pulsed
// devices (the README's training example), and asks for a GPU, which either works or
// throws DeviceError saying why (tests/embed_test.sh runs it with the CUDA
// libraries hidden).
#include <aimc/aimc.h>

#include <cstdio>

int main() {
  using namespace aimc;
  Generator gen(42);
  Linear layer(1, 1, /*bias=*/true, gen);
  SGD sgd(layer.parameters(), 0.1);
  Tensor x = gen.uniform({64, 1}, -1.0, 1.0);
  Tensor y = add_scalar(mul_scalar(x, 2.0), -1.0);
  for (int step = 0; step < 300; ++step) {
    sgd.zero_grad();
    Tensor loss = mse_loss(layer(x), y);
    loss.backward();
    sgd.step();
  }
  const float w = layer.parameters()[0].to_vector()[0];
  const float b = layer.parameters()[1].to_vector()[0];
  std::printf("w %.4f b %.4f\n", w, b);
  if (std::abs(w - 2.0f) > 1e-3f || std::abs(b + 1.0f) > 1e-3f) return 1;

  auto model = build_model("mlp", gen);
  InferenceRPUConfig config;  // PCMLikeNoiseModel + GlobalDriftCompensation
  Generator analog_gen(7, kAnalogConversionStream);
  auto chip = convert_to_analog(model, config, analog_gen);
  chip->eval();
  chip->program_analog_weights();
  Tensor images = gen.uniform({4, 1, 28, 28});
  for (double t : {1.0, 86400.0}) {
    chip->drift_analog_weights(t);
    Tensor logits = (*chip)(images);
    if (logits.shape() != Shape{4, 10}) return 1;
  }
  std::printf("drifted to 1 day\n");

  // Training on analog devices (the README's example): one AnalogSGD step moves the device weights.
  SingleRPUConfig pulsed;
  pulsed.device = {{"type", "SoftBoundsDevice"}, {"dw_min", 0.002}};
  auto trained = convert_to_analog(build_model("mlp", gen), pulsed, analog_gen);
  AnalogSGD analog_sgd(trained->parameters(), trained->analog_tiles(), 0.05);
  const Tensor before = trained->analog_tiles()[0]->weight().clone();
  Tensor labels = Tensor::from_vector(std::vector<std::int32_t>{0, 1, 2, 3}, {4});
  analog_sgd.zero_grad();
  cross_entropy((*trained)(images), labels).backward();
  analog_sgd.step();
  const auto w0 = before.to_vector(), w1 = trained->analog_tiles()[0]->weight().to_vector();
  int moved = 0;
  for (std::size_t k = 0; k < w0.size(); ++k) moved += w0[k] != w1[k];
  std::printf("pulsed update moved %d weights\n", moved);
  if (moved == 0) return 1;

  try {
    const Tensor on_gpu = Tensor::zeros({4}, DType::Float32, Device::cuda());
    std::printf("gpu: usable\n");
  } catch (const DeviceError& e) {
    std::printf("gpu: DeviceError: %s\n", e.what());
  }
  return 0;
}
