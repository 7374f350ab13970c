// The one-kernel decode step with its weights streamed through a ring of shared memory by bulk
// copies (qwen3_step_stream.cuh): Hopper's cp.async.bulk and mbarriers, so compiled for sm_90a
// alone (CMakeLists.txt); the launcher (qwen3_cuda_step_kernel.cu) picks it on sm_90 devices.
#include "model/qwen3_step_launch.cuh"

namespace npr::onestep {

bool streamed_compiled() {
  return true;
}

Status launch_streamed(int64_t rows, const Params& p, int64_t smem, int64_t* grid,
                       cudaStream_t st) {
  return launch_rows<true>(rows, p, smem, grid, st);
}

}  // namespace npr::onestep
