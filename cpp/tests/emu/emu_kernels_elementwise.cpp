// The emulator build of kernels/elementwise.cu.
#include "kernels/elementwise.cu"
