// kernels/cuda/im2col.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/im2col.cu"
