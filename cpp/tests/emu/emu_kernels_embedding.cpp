// The emulator build of kernels/embedding.cu.
#include "kernels/embedding.cu"
