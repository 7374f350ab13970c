// The emulator build of core/thread_pool.cpp (host code the emulated CUDA host code calls).
#include "core/thread_pool.cpp"
