// The emulator build of kernels/rmsnorm.cu.
#include "kernels/rmsnorm.cu"
