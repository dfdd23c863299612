// kernels/cuda/input_range.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/input_range.cu"
