// The emulator build of sampler/sampling_params.cpp (the params check the device sampler runs).
#include "sampler/sampling_params.cpp"
