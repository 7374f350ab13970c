// The emulator build of kernels/tma_map.cu (see cuda_emu.h): the emulator's tensor-map encoding.
#include "kernels/tma_map.cu"
