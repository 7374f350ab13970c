// The emulator build of sampler/token_logprob.cu.
#include "sampler/token_logprob.cu"
