// The emulator build of kernels/adamw.cu.
#include "kernels/adamw.cu"
