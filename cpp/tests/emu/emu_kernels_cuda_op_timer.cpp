// The emulator build of core/cuda_op_timer.cu.
#include "core/cuda_op_timer.cu"
