// The emulator build of kernels/decode_page_table.cpp (host code the emulated CUDA host code
// calls).
#include "kernels/decode_page_table.cpp"
