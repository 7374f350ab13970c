// The emulator build of sampler/sampler_plain.cu.
#include "sampler/sampler_plain.cu"
