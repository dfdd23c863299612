// kernels/cuda/pulsed_update.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/pulsed_update.cu"
