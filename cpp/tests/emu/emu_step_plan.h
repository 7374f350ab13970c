// The emulator build's own (namespace npr is npr_emu there): a StepPlan (emu_step.h) as the
// decoder's host plan and page table, for DeviceDecodePlan::upload.
#pragma once

#include "kernels/decode_work.h"
#include "tests/emu/emu_step.h"

namespace emu {

inline npr::DecodeWork work_of(const StepPlan& plan) {
  npr::DecodeWork w;
  w.items = plan.items;
  w.q_order = plan.q_order;
  w.merge_ptr = plan.merge_ptr;
  w.merge_rows = plan.merge_rows;
  w.queries = plan.queries;
  w.partials = plan.partials;
  w.max_rows = plan.max_rows;
  return w;
}

// Borrows the plan's arrays.
inline npr::PageTable table_of(const StepPlan& plan) {
  return npr::PageTable{static_cast<int64_t>(plan.last_len.size()), plan.indptr.data(),
                        plan.indices.data(), plan.last_len.data()};
}

}  // namespace emu
