// The emulator build of core/dtype.cpp (host code the emulated CUDA host code calls).
#include "core/dtype.cpp"
