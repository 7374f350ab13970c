// Inside .cu files only: a kernel's dynamic shared memory as `unsigned char name[]`, 16-byte
// aligned. In the emulator build (NPR_EMU, cpp/tests/emu) it is the emulated block's window.
#pragma once

#if defined(NPR_EMU)
#define NPR_DYNAMIC_SHARED(name) unsigned char* const name = ::emu::dynamic_shared()
#else
#define NPR_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif
