// The emulator build of core/structure.cpp (the Structure checks the batch checks call).
#include "core/structure.cpp"
