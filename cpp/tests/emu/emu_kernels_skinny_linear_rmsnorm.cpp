// The emulator build of kernels/skinny_linear_rmsnorm.cu.
#include "kernels/skinny_linear_rmsnorm.cu"
