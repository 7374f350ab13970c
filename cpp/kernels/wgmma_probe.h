// Test support for the sm_90a warpgroup-MMA wrappers (wgmma.cuh), built only where the
// *_sm90a.cu files are (NPR_HAVE_SM90A): one warpgroup stages small operands into 128-byte-
// swizzled shared tiles, runs one wrapper over every k-step, and writes its accumulators out
// by the fragment layout the attention kernels assume. A test compares them with a host
// matmul; integer-valued operands make every sum exact, so any layout slip shows.
//
// Operands are bf16 bits, row-major, on the device; d is fp32, row-major:
//   kSsKMajor:     a (64, 128) [m][k], b (64, 128) [n][k];  d (64, 64)  = a b^T.
//   kRsN128:       a (64, 64) [m][k] (as registers), b (64, 128) [k][n];  d (64, 128) = a b.
//   kRsN64:        a (64, 64) [m][k] (as registers), b (64, 64) [k][n];  d (64, 64) = a b.
//   kSsTransposed: a (64, 64) [k][m] (read M-major), b (64, 128) [k][n], its columns 64..127
//                  (read N-major from the second column block);  d (64, 64) [m][n].
#pragma once

#include <cstdint>

#include "core/status.h"

namespace npr {

enum class WgmmaProbe { kSsKMajor, kRsN128, kRsN64, kSsTransposed };

// Runs the probe on the current device and waits for it. kUnavailable from the device when it
// cannot run sm_90a code.
Status wgmma_probe(WgmmaProbe kind, const uint16_t* a, const uint16_t* b, float* d);

}  // namespace npr
