// The emulator build of core/tensor.cpp (host code the emulated CUDA host code calls).
#include "core/tensor.cpp"
