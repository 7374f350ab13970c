// The emulator build of kernels/parallel_attention_fwd_ws128_sm90a.cu (see cuda_emu.h).
#include "kernels/parallel_attention_fwd_ws128_sm90a.cu"
