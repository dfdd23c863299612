// Umbrella header: everything a program embedding aimc needs.
// Installed as <aimc/aimc.h>.
#pragma once

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/generator.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "engine/tensor.h"
