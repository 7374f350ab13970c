// Large host buffers on transparent huge pages where the kernel offers them.
//
// A decode step streams every weight (and the KV pages) once. With 4 KiB pages each weight row
// of a 1024-wide matrix is its own page: the L2 streamer stops at every page boundary and every
// row costs a TLB miss, so a weight stream reached ~28 GB/s here against ~34 GB/s on 2 MiB
// pages (and an 8-row skinny GEMM 32 ms against 29 ms over 768 MB). Buffers of at least
// kHugeMin bytes are aligned to 2 MiB and marked MADV_HUGEPAGE; smaller ones, and systems
// without the advice (or with THP off), get ordinary memory and lose nothing but the speed.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace npr {

inline constexpr size_t kHugePage = size_t{2} << 20;
inline constexpr size_t kHugeMin = size_t{4} << 20;

// Raw allocation (std::bad_alloc when it fails) and its release; `bytes` must match.
inline void* huge_alloc(size_t bytes) {
  if (bytes < kHugeMin) {
    void* p = std::malloc(bytes == 0 ? 1 : bytes);
    if (!p) throw std::bad_alloc();
    return p;
  }
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = std::aligned_alloc(kHugePage, rounded);
  if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  (void)madvise(p, rounded, MADV_HUGEPAGE);  // advice only: refused or THP off is still correct
#endif
  return p;
}

inline void huge_free(void* p) {
  std::free(p);
}

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: rebinding is implicit
  T* allocate(size_t n) {
    if (n > static_cast<size_t>(-1) / sizeof(T)) throw std::bad_alloc();
    return static_cast<T*>(huge_alloc(n * sizeof(T)));
  }
  void deallocate(T* p, size_t) { huge_free(p); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

// A float array that a decode step or an optimizer step streams whole.
using HugeFloats = std::vector<float, HugePageAllocator<float>>;

}  // namespace npr
