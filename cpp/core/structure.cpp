#include "core/structure.h"

#include <string>

namespace npr {

Status check_structure(const StructureView& s) {
  if (s.sequences < 1) return Status::invalid("structure: at least one sequence is required");
  if (s.cu_seqlens[0] != 0) return Status::invalid("structure: cu_seqlens[0] must be 0");
  for (int64_t i = 0; i < s.sequences; ++i) {
    if (s.cu_seqlens[i + 1] < s.cu_seqlens[i])
      return Status::invalid("structure: cu_seqlens must not decrease (index " +
                             std::to_string(i + 1) + ")");
  }
  if (s.cu_seqlens[s.sequences] != s.tokens)
    return Status::invalid("structure: cu_seqlens must end at the token count " +
                           std::to_string(s.tokens) + " (got " +
                           std::to_string(s.cu_seqlens[s.sequences]) + ")");
  if (s.depth < 0 || s.depth > 16) return Status::invalid("structure: depth must be in [0, 16]");
  for (int64_t i = 0; i < s.tokens * s.depth; ++i) {
    const bool outside = s.block[i] == -1 && s.step[i] == -1;
    const bool inside = s.block[i] >= 0 && s.step[i] >= 0;
    if (!outside && !inside)
      return Status::invalid("structure: token " + std::to_string(i / s.depth) + " level " +
                             std::to_string(i % s.depth) +
                             ": block and step must both be -1 or both be >= 0");
  }
  return Status::ok();
}

}  // namespace npr
