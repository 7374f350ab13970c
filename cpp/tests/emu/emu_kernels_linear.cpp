// The emulator build of kernels/linear.cu.
#include "kernels/linear.cu"
