// The emulator build of kernels/swiglu.cu.
#include "kernels/swiglu.cu"
