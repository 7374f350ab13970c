// The emulator build of kernels/policy_loss.cpp (the argument checks and metrics the device loss
// shares with the CPU one; plain C++).
#include "kernels/policy_loss.cpp"
