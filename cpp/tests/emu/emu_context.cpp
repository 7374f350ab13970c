// emu_context.h. The x86-64 switch follows the System V ABI: rbx, rbp, r12..r15, MXCSR and the
// x87 control word are the state a call must preserve; everything else is the caller's.
#include "tests/emu/emu_context.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
extern "C" void npr_emu_switch(void** save_sp, void* new_sp);
asm(R"(
  .text
  .globl npr_emu_switch
  .type npr_emu_switch, @function
npr_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw 12(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr 8(%rsp)
  fldcw 12(%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size npr_emu_switch, .-npr_emu_switch
  .section .note.GNU-stack, "", @progbits
  .text
)");
#endif

namespace emu {

void context_init(FiberContext* c, unsigned char* stack, size_t bytes, void (*entry)()) {
#if defined(__x86_64__)
  // From the 16-aligned top: a pad word (entry's "return address"), entry (where the first
  // switch returns to), six zero registers, MXCSR and the control word. entry then starts with
  // rsp = top - 8, as after a call.
  auto top = (reinterpret_cast<uintptr_t>(stack + bytes)) & ~static_cast<uintptr_t>(15);
  auto* sp = reinterpret_cast<uint64_t*>(top - 80);
  std::memset(sp, 0, 80);
  uint32_t mxcsr;
  uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  std::memcpy(reinterpret_cast<unsigned char*>(sp) + 8, &mxcsr, 4);
  std::memcpy(reinterpret_cast<unsigned char*>(sp) + 12, &fpcw, 2);
  sp[8] = reinterpret_cast<uint64_t>(entry);
  c->sp = sp;
#else
  getcontext(&c->uc);
  c->uc.uc_stack.ss_sp = stack;
  c->uc.uc_stack.ss_size = bytes;
  c->uc.uc_link = nullptr;
  makecontext(&c->uc, entry, 0);
#endif
}

void context_switch(FiberContext* from, FiberContext* to) {
#if defined(__x86_64__)
  npr_emu_switch(&from->sp, to->sp);
#else
  swapcontext(&from->uc, &to->uc);
#endif
}

}  // namespace emu
