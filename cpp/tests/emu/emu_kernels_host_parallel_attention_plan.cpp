// The emulator build of kernels/parallel_attention_plan.cpp (the tile plan the model builds once
// a batch, on the host).
#include "kernels/parallel_attention_plan.cpp"
