// The emulator build of kernels/parallel_attention.cu (attention_forward_cuda, the device plan's
// upload): the sm_90a kernels are in this build (emu_kernels_*_sm90a.cpp), so it has them.
#define NPR_HAVE_SM90A 1
#include "kernels/parallel_attention.cu"
