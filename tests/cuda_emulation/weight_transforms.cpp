// kernels/cuda/weight_transforms.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/weight_transforms.cu"
