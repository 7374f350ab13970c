// The emulator build's own copy of Status (its namespace is npr_emu; see cuda_emu.h).
#include "core/status.cpp"
