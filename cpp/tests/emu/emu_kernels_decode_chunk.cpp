// The emulator build of kernels/decode_chunk_cuda.cu.
#include "kernels/decode_chunk_cuda.cu"
