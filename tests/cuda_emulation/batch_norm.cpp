// kernels/cuda/batch_norm.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/batch_norm.cu"
