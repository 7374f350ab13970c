// The emulator build of kernels/rope.cpp (host code the emulated CUDA host code calls).
#include "kernels/rope.cpp"
