// kernels/cuda/analog_mvm.cu compiled as C++ for the CUDA emulation (see
// kernels/cuda/emulation.h).
#include "kernels/cuda/analog_mvm.cu"
