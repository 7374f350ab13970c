// The emulator build of model/qwen3_config.cpp (host code the emulated CUDA host code calls).
#include "model/qwen3_config.cpp"
