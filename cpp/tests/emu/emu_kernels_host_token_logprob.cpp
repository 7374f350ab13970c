// The emulator build of sampler/token_logprob.cpp (the query checks the device twin shares).
#include "sampler/token_logprob.cpp"
