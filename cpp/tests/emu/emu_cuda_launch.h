// Kernel launches for the emulator build (included by cuda_emu.h after the toolkit's
// vector_types.h, whose dim3 they take): cudaLaunchKernelEx and NPR_LAUNCH's, each with the
// checks of emu_cuda_api.h, then the grid on the CPU (queued in deferred mode), cooperative (every
// block resident) when cudaLaunchKernelEx's attribute says so.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "tests/emu/emu_cuda_api.h"
#include "tests/emu/emu_runtime.h"

namespace emu::cuda {

// Programmatic serialization (pdl.cuh): kernels still run one after another, each programmatic
// one queued as such, so that deferred mode checks what it reads before its wait
// (emu_pdl_check.h).
enum cudaLaunchAttributeID {
  cudaLaunchAttributeCooperative = 2,
  cudaLaunchAttributeProgrammaticStreamSerialization = 3
};
struct cudaLaunchAttribute {
  cudaLaunchAttributeID id{};
  union {
    int cooperative;
    int programmaticStreamSerializationAllowed;
  } val{};
};
struct cudaLaunchConfig_t {
  ::dim3 gridDim, blockDim;
  size_t dynamicSmemBytes = 0;
  cudaStream_t stream = nullptr;
  cudaLaunchAttribute* attrs = nullptr;
  unsigned numAttrs = 0;
};

template <typename... Params, typename... Args>
cudaError_t cudaLaunchKernelEx(const cudaLaunchConfig_t* c, void (*kernel)(Params...),
                               Args&&... args) {
  bool coop = false, programmatic = false;
  for (unsigned i = 0; i < c->numAttrs; ++i) {
    if (c->attrs[i].id == cudaLaunchAttributeCooperative && c->attrs[i].val.cooperative)
      coop = true;
    if (c->attrs[i].id == cudaLaunchAttributeProgrammaticStreamSerialization &&
        c->attrs[i].val.programmaticStreamSerializationAllowed)
      programmatic = true;
  }
  const Dim3 grid{c->gridDim.x, c->gridDim.y, c->gridDim.z};
  const cudaError_t e = check_launch(reinterpret_cast<const void*>(kernel), grid, c->blockDim.x,
                                     c->blockDim.y * c->blockDim.z, c->dynamicSmemBytes, coop);
  if (e != cudaSuccess) return e;
  const Dim3 block{c->blockDim.x, c->blockDim.y, c->blockDim.z};
  const int smem = static_cast<int>(c->dynamicSmemBytes);
  const auto run = [=](auto... a) {
    const auto body = [&] { kernel(a...); };
    return launch_result(coop ? launch_cooperative(grid.x, block, smem, body)
                              : launch(grid, block, smem, body));
  };
  if (queued()) {  // the arguments as they are now, as a graph or a stream keeps them
    enqueue([=] { return run(std::decay_t<Args>(args)...); },
            programmatic ? QueuedKind::kProgrammatic : QueuedKind::kKernel);
    return cudaSuccess;
  }
  return run(std::forward<Args>(args)...);
}

// core/cuda_launch.cuh's NPR_LAUNCH(grid, threads, smem, stream, kernel)(args...) in this build:
// the launch's checks, then the grid (1-D or 2-D; blocks 1-D, 2-D or 3-D) on the CPU, queued in
// deferred mode (one queue for every stream); a refused launch or a fault is left as the last
// error, as the runtime leaves a launch's.
template <typename... Params>
class KernelLaunch {
 public:
  KernelLaunch(unsigned grid, unsigned threads, size_t smem, cudaStream_t,
               void (*kernel)(Params...))
      : grid_{grid, 1, 1}, block_{threads, 1, 1}, smem_(smem), kernel_(kernel) {}
  KernelLaunch(::dim3 grid, unsigned threads, size_t smem, cudaStream_t, void (*kernel)(Params...))
      : grid_{grid.x, grid.y, grid.z}, block_{threads, 1, 1}, smem_(smem), kernel_(kernel) {}
  KernelLaunch(unsigned grid, ::dim3 block, size_t smem, cudaStream_t, void (*kernel)(Params...))
      : grid_{grid, 1, 1}, block_{block.x, block.y, block.z}, smem_(smem), kernel_(kernel) {}
  KernelLaunch(::dim3 grid, ::dim3 block, size_t smem, cudaStream_t, void (*kernel)(Params...))
      : grid_{grid.x, grid.y, grid.z},
        block_{block.x, block.y, block.z},
        smem_(smem),
        kernel_(kernel) {}
  template <typename... Args>
  void operator()(Args&&... args) const {
    if (check_launch(reinterpret_cast<const void*>(kernel_), grid_, block_.x, block_.y * block_.z,
                     smem_, false) != cudaSuccess)
      return;
    const auto run = [grid = grid_, block = block_, smem = static_cast<int>(smem_),
                      kernel = kernel_](auto... a) {
      return launch_result(launch(grid, block, smem, [&] { kernel(a...); }));
    };
    if (queued()) {  // the arguments as they are now, as a graph or a stream keeps them
      enqueue([=] { return run(std::decay_t<Args>(args)...); }, QueuedKind::kKernel);
      return;
    }
    run(std::forward<Args>(args)...);
  }

 private:
  Dim3 grid_, block_;
  size_t smem_;
  void (*kernel_)(Params...);
};

}  // namespace emu::cuda
