// The emulator build of kernels/decode_attention.cu.
#include "kernels/decode_attention.cu"
