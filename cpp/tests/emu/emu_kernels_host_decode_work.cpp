// The emulator build of kernels/decode_work.cpp (host code the emulated CUDA host code calls).
#include "kernels/decode_work.cpp"
