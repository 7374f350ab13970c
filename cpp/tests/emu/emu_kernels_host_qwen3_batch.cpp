// The emulator build of model/qwen3_batch.cpp (the batch checks the emulated model runs).
#include "model/qwen3_batch.cpp"
