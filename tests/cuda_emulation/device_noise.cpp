// kernels/cuda/device_noise.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/device_noise.cu"
