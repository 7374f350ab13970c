// The emulator build of kernels/policy_loss.cu.
#include "kernels/policy_loss.cu"
