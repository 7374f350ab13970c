// The emulator build of kernels/logprob_head.cu.
#include "kernels/logprob_head.cu"
