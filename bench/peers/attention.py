"""PyTorch CPU peer for `npm run bench -- attention`: the dense-masked attention NPR's trainer
uses (torch 1.13 has no scaled_dot_product_attention): per kv-head group, scores = q k^T * scale
(float32, (G, T, T)) + an additive mask (0 visible, -inf not), softmax, then @ v; forward, and
forward + backward through autograd when asked. Same inputs as our run (raw float32 files), same
thread count, OpenBLAS core type set by the caller.

Visibility (DESIGN.md, depth 1): key k is visible to query q iff k <= q and not (both in the same
block and in different steps).

usage: python3 attention.py '<json: {dir, T, heads, kv_heads, head_dim, segments: [[len, block,
step], ...], threads, reps, backward, write_out}>'
reads dir/{q,k,v,dout}.bin; prints one JSON line: {"fwd_s", "fwd_bwd_s" (null unless backward),
"torch_version", "max_abs_diff_out" (null unless write_out: vs dir/out.bin)}.
"""

import json
import math
import sys
import time

import torch


def visibility_mask(T, segments):
    block = torch.empty(T, dtype=torch.int64)
    step = torch.empty(T, dtype=torch.int64)
    t = 0
    for n, b, s in segments:
        block[t : t + n] = b
        step[t : t + n] = s
        t += n
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    same_block = (block[:, None] == block[None, :]) & (block[:, None] >= 0)
    sibling = same_block & (step[:, None] != step[None, :])
    mask = torch.zeros(T, T)
    mask.masked_fill_(~(causal & ~sibling), float("-inf"))
    return mask


def attention(q, k, v, mask, heads, kv_heads, scale):
    # q (T, heads, D), k, v (T, kv_heads, D) -> (T, heads, D)
    G = heads // kv_heads
    outs = []
    for g in range(kv_heads):
        qg = q[:, g * G : (g + 1) * G, :].transpose(0, 1)  # (G, T, D)
        kg = k[:, g, :]  # (T, D)
        vg = v[:, g, :]
        s = torch.matmul(qg, kg.t()) * scale + mask  # (G, T, T)
        p = torch.softmax(s, dim=-1)
        outs.append(torch.matmul(p, vg).transpose(0, 1))  # (T, G, D)
    return torch.cat(outs, dim=1)


def load(path, shape):
    return torch.from_file(path, size=math.prod(shape), dtype=torch.float32).reshape(shape)


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(int(spec["threads"]))
    T, H, KV, D = spec["T"], spec["heads"], spec["kv_heads"], spec["head_dim"]
    d = spec["dir"]
    q = load(d + "/q.bin", (T, H, D))
    k = load(d + "/k.bin", (T, KV, D))
    v = load(d + "/v.bin", (T, KV, D))
    dout = load(d + "/dout.bin", (T, H, D))
    mask = visibility_mask(T, spec["segments"])
    scale = 1.0 / math.sqrt(D)
    result = {"torch_version": torch.__version__, "fwd_bwd_s": None, "max_abs_diff_out": None}
    best = float("inf")
    with torch.no_grad():
        for _ in range(int(spec["reps"])):
            t0 = time.perf_counter()
            out = attention(q, k, v, mask, H, KV, scale)
            best = min(best, time.perf_counter() - t0)
    result["fwd_s"] = best
    if spec.get("write_out"):
        ours = load(d + "/out.bin", (T, H, D))
        result["max_abs_diff_out"] = float((ours - out).abs().max())
    del out
    if spec.get("backward"):
        best = float("inf")
        for _ in range(int(spec["reps"])):
            qq, kk, vv = (x.clone().requires_grad_(True) for x in (q, k, v))
            t0 = time.perf_counter()
            out = attention(qq, kk, vv, mask, H, KV, scale)
            out.backward(dout)
            best = min(best, time.perf_counter() - t0)
            del out, qq, kk, vv
        result["fwd_bwd_s"] = best
    print(json.dumps(result))


if __name__ == "__main__":
    main()
