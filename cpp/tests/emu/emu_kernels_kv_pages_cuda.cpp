// The emulator build of kvcache/kv_pages_cuda.cu.
#include "kvcache/kv_pages_cuda.cu"
