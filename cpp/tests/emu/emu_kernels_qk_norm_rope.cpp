// The emulator build of kernels/qk_norm_rope.cu.
#include "kernels/qk_norm_rope.cu"
