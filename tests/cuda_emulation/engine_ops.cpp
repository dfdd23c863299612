// kernels/cuda/engine_ops.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/engine_ops.cu"
