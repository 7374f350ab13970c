// The emulator build of core/cuda_span_timer.cu.
#include "core/cuda_span_timer.cu"
