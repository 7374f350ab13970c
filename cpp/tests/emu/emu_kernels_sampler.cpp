// The emulator build of sampler/sampler.cu.
#include "sampler/sampler.cu"
