// NPR_SANITIZER_NOINLINE marks the CPU SIMD kernels' register-tile functions (a tile of MR x NC
// vector accumulators over a run of k). In the product it is nothing: the compiler inlines them
// as it sees fit. Under AddressSanitizer they stay out of line. There the dispatchers, which
// instantiate every tile height, would inline them all into one function, and clang took minutes
// to instrument it (parallel_attention_avx512.cpp: 103 s, against 4 s without the sanitizer), most
// of CI's sanitizer build. What the sanitizer checks, the memory each tile touches, is the same
// either way. No standard headers here (the SIMD translation units keep theirs few).
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define NPR_SANITIZER_NOINLINE [[gnu::noinline]]
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NPR_SANITIZER_NOINLINE [[gnu::noinline]]
#endif
#endif
#ifndef NPR_SANITIZER_NOINLINE
#define NPR_SANITIZER_NOINLINE
#endif
