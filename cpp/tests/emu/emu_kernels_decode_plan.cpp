// The emulator build of kernels/decode_plan_cuda.cu (DeviceDecodePlan's host side).
#include "kernels/decode_plan_cuda.cu"
