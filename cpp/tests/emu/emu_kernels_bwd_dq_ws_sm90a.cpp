// The emulator build of kernels/parallel_attention_bwd_dq_ws_sm90a.cu (see cuda_emu.h).
#include "kernels/parallel_attention_bwd_dq_ws_sm90a.cu"
