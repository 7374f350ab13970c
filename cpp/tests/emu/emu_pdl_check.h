// The emulator's check of programmatic dependent launches (pdl.cuh), private to its runtime API
// (emu_cuda_api.cpp): as deferred mode runs its queue, each kernel followed by a programmatic
// launch has the bytes it changes recorded with their old values, and a programmatic launch gets
// a view of memory (emu_runtime.h's PdlView) without the changes of every kernel it may overlap:
// the one before it where that one let its dependents launch early (launch_dependents), and
// further back while each of those was programmatic too and let them launch before it waited. What
// a kernel reads before its griddepcontrol.wait is then what it could read on a GPU at worst; a
// read of an earlier kernel's output there gives other bits, and a write there to bytes those
// kernels write is a fault.
//
// Not checked: eager mode (no queue to look ahead in), cooperative launches (every block
// resident: one view for all), bytes an earlier kernel writes with the values they already held,
// and writes before the wait to bytes the kernels before only read.
#pragma once

#include <cstdint>
#include <string>

namespace emu::pdl_check {

enum class OpKind { kOther, kKernel, kProgrammatic };

// Around each queued op the drain runs; `next` is the kind of the op queued after it (kOther
// when none). after returns "" or a fault of the op: a programmatic kernel none of whose threads
// waited, after a kernel that let it launch early (the PTX ISA requires the wait then: it may
// otherwise run wholly before that kernel, and end before it).
void before(OpKind op, OpKind next);
std::string after(OpKind op);
// Forgets every recorded change (the end of a drain: what runs next follows a synchronisation).
void reset();
// Programmatic launches run so far with a view (the tests' evidence that a path was checked).
int64_t checked_launches();
// On unless NPR_EMU_PDL_CHECK=0 is in the environment; tests may turn it off and on.
bool enabled();
void set_enabled(bool on);

}  // namespace emu::pdl_check
