// qwen3_validate_batch (qwen3_model.h): the packed batch's contract, checked the same way by every
// backend before anything runs (the CPU model, the CUDA model, the decode step's prefill).
#include <string>

#include "model/qwen3_model.h"

namespace npr {

Status qwen3_validate_batch(const Qwen3Config& cfg, const Qwen3Batch& b) {
  if (b.tokens <= 0) return Status::invalid("qwen3 forward: the batch has no tokens");
  if (b.structure.tokens != b.tokens)
    return Status::invalid("qwen3 forward: the structure covers " +
                           std::to_string(b.structure.tokens) + " tokens, the batch has " +
                           std::to_string(b.tokens));
  NPR_TRY(check_structure(b.structure));
  const StructureView& st = b.structure;
  for (int64_t s = 0; s < st.sequences; ++s) {
    for (int64_t t = st.cu_seqlens[s]; t < st.cu_seqlens[s + 1]; ++t) {
      const std::string at = "qwen3 forward: token " + std::to_string(t);
      if (b.ids[t] < 0 || b.ids[t] >= cfg.vocab)
        return Status::out_of_range(at + " has id " + std::to_string(b.ids[t]) +
                                    " outside the vocabulary [0, " + std::to_string(cfg.vocab) +
                                    ")");
      if (b.positions[t] < 0)
        return Status::out_of_range(at + " has a negative position " +
                                    std::to_string(b.positions[t]));
      const int32_t p = b.prev[t];
      if (p == -1) continue;
      if (p < st.cu_seqlens[s] || p >= t)
        return Status::out_of_range(at + ": prev " + std::to_string(p) +
                                    " must be -1 or an earlier token of the same sequence");
      if (!structure_visible(st, t, p))
        return Status::invalid(at + ": prev " + std::to_string(p) +
                               " is not visible to it under the structure (a sibling step)");
    }
  }
  return Status::ok();
}

}  // namespace npr
