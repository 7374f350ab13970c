// The emulator build of kernels/rope.cu.
#include "kernels/rope.cu"
