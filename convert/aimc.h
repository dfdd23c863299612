// Umbrella header: everything a program embedding aimc needs.
// Installed as <aimc/aimc.h>; compile with `pkg-config --cflags --libs aimc`.
#pragma once

// engine: tensors, autograd, random numbers, checkpoints format, the processes of a run
#include "engine/autograd.h"
#include "engine/communicator.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "engine/grad_check.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

// layers: RPU configs, analog tiles, modules and optimizers
#include "layers/config/presets.h"
#include "layers/config/rpu_config.h"
#include "layers/devices/conductance_converter.h"
#include "layers/devices/drift_compensation.h"
#include "layers/devices/noise_model.h"
#include "layers/devices/pcm_like_noise_model.h"
#include "layers/devices/tile_device.h"
#include "layers/modules/analog_conv.h"
#include "layers/modules/analog_linear.h"
#include "layers/tiles/analog_tile.h"
#include "layers/tiles/realistic_read.h"
#include "layers/tiles/tile_array.h"
#include "layers/modules/activation.h"
#include "layers/modules/basic_block.h"
#include "layers/modules/batch_norm.h"
#include "layers/modules/conv.h"
#include "layers/modules/dropout.h"
#include "layers/modules/flatten.h"
#include "layers/modules/graph.h"
#include "layers/modules/init.h"
#include "layers/modules/linear.h"
#include "layers/modules/module.h"
#include "layers/modules/module_factory.h"
#include "layers/modules/pooling.h"
#include "layers/modules/sequential.h"
#include "layers/optim/adam.h"
#include "layers/optim/analog_sgd.h"
#include "layers/optim/lr_scheduler.h"
#include "layers/optim/optimizer.h"
#include "layers/optim/sgd.h"

// convert: model builders, checkpoints and ONNX files
#include "convert/checkpoint.h"
#include "convert/conversion.h"
#include "convert/models.h"
#include "convert/onnx_io.h"  // ONNX import/export (onnx_available(): false in a build without it)
