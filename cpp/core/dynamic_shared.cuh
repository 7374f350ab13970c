// Inside .cu files only: a kernel's shared memory declared so that the emulator build (NPR_EMU,
// cpp/tests/emu) can run it, where every thread is a fiber and a plain `__shared__` array would
// be each thread's own.
// NPR_DYNAMIC_SHARED(name): the dynamic shared memory as `unsigned char name[]`, 16-byte aligned
// (in the emulator: the emulated block's window).
// NPR_DYNAMIC_SHARED_AS(T, name): the same as `extern __shared__ T name[]` (T's alignment).
// NPR_STATIC_SHARED_ALIGNED(align, T, name, dims...): the same with `__align__(align)`.
// NPR_STATIC_SHARED(T, name, dims...): `__shared__ T name dims` (dims: one or more [n]; in the
// emulator: an array of the block, the same for all its threads, 16-byte aligned).
#pragma once

#if defined(NPR_EMU)
#define NPR_DYNAMIC_SHARED(name) unsigned char* const name = ::emu::dynamic_shared()
#define NPR_DYNAMIC_SHARED_AS(T, name) T* const name = reinterpret_cast<T*>(::emu::dynamic_shared())
#define NPR_STATIC_SHARED(T, name, ...)                         \
  using name##_shared_type = T __VA_ARGS__;                     \
  static const char name##_shared_tag = 0;                      \
  name##_shared_type& name = *static_cast<name##_shared_type*>( \
      ::emu::static_shared(&name##_shared_tag, sizeof(name##_shared_type)))
#define NPR_STATIC_SHARED_ALIGNED(align, T, name, ...)          \
  using name##_shared_type = T __VA_ARGS__;                     \
  static const char name##_shared_tag = 0;                      \
  name##_shared_type& name = *static_cast<name##_shared_type*>( \
      ::emu::static_shared(&name##_shared_tag, sizeof(name##_shared_type), align))
#else
#define NPR_DYNAMIC_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#define NPR_DYNAMIC_SHARED_AS(T, name) extern __shared__ T name[]
#define NPR_STATIC_SHARED(T, name, ...) __shared__ T name __VA_ARGS__
#define NPR_STATIC_SHARED_ALIGNED(align, T, name, ...) \
  __shared__ __align__(align)                          \
  T name __VA_ARGS__
#endif
