// The emulator build of kernels/skinny_linear.cu.
#include "kernels/skinny_linear.cu"
