// The emulator build of kernels/parallel_attention_bwd_tile_dq_sm90a.cu (see cuda_emu.h).
#include "kernels/parallel_attention_bwd_tile_dq_sm90a.cu"
