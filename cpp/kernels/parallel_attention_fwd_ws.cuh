// Private to the warp-specialised Hopper forwards (parallel_attention_fwd_ws_sm90a.cu, 64 keys a
// step; parallel_attention_fwd_ws128_sm90a.cu, 128): their kernels' parameter block and the host
// code that fills it.
#pragma once

#include <string>

#include "core/status.h"
#include "kernels/parallel_attention_fwd.cuh"
#include "kernels/tma_map.h"

namespace npr::attn_fwd {

// FwdParams and the tensor maps of q, k, v (rows = tokens, boxes of 64 rows), passed as a
// __grid_constant__ so that the copies can address the maps in place.
struct WsParams {
  TmaMap2d q, k, v;
  FwdParams p;
};

// w from p, after the checks the copies need; fn names the entry point in errors.
inline Status ws_params_of(const FwdParams& p, const char* fn, WsParams* w) {
  if (p.head_dim != 64 && p.head_dim != 128)
    return Status::invalid(std::string(fn) + ": head_dim " + std::to_string(p.head_dim) +
                           " (64 or 128 only)");
  if (p.tokens <= 0 || p.tokens > 0x7fffffff)
    return Status::invalid(std::string(fn) + ": tokens " + std::to_string(p.tokens) +
                           " (1 to 2^31 - 1: the copies take 32-bit rows)");
  w->p = p;
  NPR_TRY(make_tma_map_bf16_2d(&w->q, p.q, p.ldq, p.tokens, p.ldq, kT));
  NPR_TRY(make_tma_map_bf16_2d(&w->k, p.k, p.ldk, p.tokens, p.ldk, kT));
  NPR_TRY(make_tma_map_bf16_2d(&w->v, p.v, p.ldk, p.tokens, p.ldk, kT));
  return Status::ok();
}

}  // namespace npr::attn_fwd
