// kernels/cuda/blas1.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/blas1.cu"
