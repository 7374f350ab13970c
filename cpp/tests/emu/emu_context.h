// Context switching for the emulator's fibers (emu_runtime.cpp). On x86-64 a hand-written
// switch that saves the callee-saved registers, MXCSR and the x87 control word and nothing else
// (swapcontext also saves the signal mask: a system call per switch, and a kernel emulation
// switches a few times per lane per warp instruction); ucontext elsewhere.
#pragma once

#include <cstddef>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace emu {

struct FiberContext {
#if defined(__x86_64__)
  void* sp = nullptr;  // the saved stack pointer, the registers pushed below it
#else
  ucontext_t uc;
#endif
};

// A context that starts entry() (which must never return) on [stack, stack + bytes).
void context_init(FiberContext* c, unsigned char* stack, size_t bytes, void (*entry)());
// Saves the running context into `from` and resumes `to`.
void context_switch(FiberContext* from, FiberContext* to);

}  // namespace emu
