"""PyTorch CUDA peers for `npm run bench -- attention --backend cuda` (bench/attention-cuda.ts),
on the same GPU, the same visibility and the very same bf16 inputs as our kernel:

- FlexAttention (torch.compile'd flex_attention) with a BlockMask built from the Structure's
  block/step arrays (once, outside the timing, like our plan);
- SDPA causal with the flash backend only (all the causal work: what skipping is measured against);
- SDPA with a dense boolean (T, T) mask after repeating K, V to every head, default backend
  choice (NPR's trainer's way, Hugging Face's sdpa path; only when spec.dense_mask, i.e.
  T <= 8k: the mask alone is T^2 bytes).

Visibility (DESIGN.md, depth 1): key k is visible to query q iff k <= q and not (both in the same
block and in different steps); block = step = -1 outside steps.

Inputs: value i of tensor `seed` (q 1, k 2, v 3, dout 4; q, dout laid out (T, heads, D), k, v
(T, kv_heads, D)) = the addon's counter hash (kernels/parallel_attention_timing.cu) of
i + seed * 2^28, mapped to [-1, 1) in fp32 and rounded to bf16; so our sampled rows of out, dq,
dk, dv (fp32 files written by the bench) can be compared with FlexAttention's. GQA runs natively
(enable_gqa=True) in FlexAttention and SDPA flash; if flash refuses it, K and V are expanded to
all heads outside the timing and a note says so.

Timing: CUDA events around each call (forward under no_grad; forward + backward with
out.backward(dout)), `warmup` untimed calls first (they include torch.compile), median of
`iters`, in ms.

usage: python3 attention_cuda.py '<json: {dir, T, heads, kv_heads, head_dim, iters, warmup,
dense_mask, samples: ["out", "dq", "dk", "dv"] (files present in dir)}>'
reads dir/block.bin, dir/step.bin (int32, T), dir/sample_tokens.bin (int32) and
dir/sample_<name>.bin (float32); prints one JSON line: {torch_version, device, flex_fwd_ms,
flex_fwdbwd_ms, flash_fwd_ms, flash_fwdbwd_ms, mask_fwd_ms, mask_fwdbwd_ms, check, notes, errors}.
"""

import inspect
import json
import os
import sys
import traceback

import numpy as np
import torch
import torch.nn.functional as F

M32 = 0xFFFFFFFF


def hash_uniform(n, seed, device):
    """The addon's counter hash, with int64 tensors (every product stays below 2^59)."""
    x = (torch.arange(n, device=device, dtype=torch.int64) + (seed << 28)) & M32
    x ^= x >> 16
    x = (x * 0x45D9F3B) & M32
    x ^= x >> 16
    x = (x * 0x45D9F3B) & M32
    x ^= x >> 16
    return (x >> 8).to(torch.float32) * (2.0**-23) - 1.0


def make_input(T, heads, D, seed, device):
    """(1, heads, T, D) bf16, contiguous, from the (T, heads, D) hash order."""
    x = hash_uniform(T * heads * D, seed, device).to(torch.bfloat16).view(T, heads, D)
    return x.permute(1, 0, 2).unsqueeze(0).contiguous()


def time_cuda(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for i in range(iters):
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    return float(np.median([s.elapsed_time(e) for s, e in zip(starts, ends)]))


def fwd_and_fwdbwd(attn, q, k, v, dout, iters, warmup):
    """(forward ms, forward + backward ms) of attn(q, k, v) -> (1, heads, T, D)."""

    def fwd():
        with torch.no_grad():
            attn(q, k, v)

    qq, kk, vv = (x.detach().clone().requires_grad_(True) for x in (q, k, v))

    def fwdbwd():
        qq.grad = kk.grad = vv.grad = None
        attn(qq, kk, vv).backward(dout)

    return time_cuda(fwd, iters, warmup), time_cuda(fwdbwd, iters, warmup)


def expand_kv(q, k, v):
    """K, V repeated to all query heads (what Hugging Face's repeat_kv does), contiguous."""
    group = q.shape[1] // k.shape[1]
    return (k.repeat_interleave(group, dim=1).contiguous(),
            v.repeat_interleave(group, dim=1).contiguous())


def gqa_or_expanded(call, q, k, v, notes, name):
    """(attn, k, v): call(q, k, v, gqa=True) when the backend takes it (probed with one
    forward), else call(..., gqa=False) on K, V expanded up front (outside the timing)."""
    try:
        with torch.no_grad():
            call(q, k, v, True)
        torch.cuda.synchronize()
        return (lambda a, b, c: call(a, b, c, True)), k, v
    except RuntimeError as e:
        first = (str(e).splitlines() or [""])[0][:160]
        notes.append(f"{name}: enable_gqa refused ({first}); K, V expanded to {q.shape[1]} heads "
                     "outside the timing")
        ke, ve = expand_kv(q, k, v)
        return (lambda a, b, c: call(a, b, c, False)), ke, ve


def rel_err(ours, ref):
    ref = ref.double()
    return float((ours.double() - ref).norm() / ref.norm().clamp_min(1e-30))


def main():
    spec = json.loads(sys.argv[1])
    T, H, KV, D = spec["T"], spec["heads"], spec["kv_heads"], spec["head_dim"]
    iters, warmup = int(spec["iters"]), int(spec["warmup"])
    d = spec["dir"]
    dev = torch.device("cuda")
    result = {
        "torch_version": torch.__version__,
        "device": torch.cuda.get_device_name(0),
        "flex_fwd_ms": None,
        "flex_fwdbwd_ms": None,
        "flash_fwd_ms": None,
        "flash_fwdbwd_ms": None,
        "mask_fwd_ms": None,
        "mask_fwdbwd_ms": None,
        "check": None,
        "notes": [],
        "errors": {},
    }
    notes, errors = result["notes"], result["errors"]

    block = torch.from_numpy(np.fromfile(os.path.join(d, "block.bin"), dtype=np.int32)).to(dev)
    step = torch.from_numpy(np.fromfile(os.path.join(d, "step.bin"), dtype=np.int32)).to(dev)
    assert block.numel() == T and step.numel() == T, "block/step files do not hold T entries"
    q = make_input(T, H, D, 1, dev)
    k = make_input(T, KV, D, 2, dev)
    v = make_input(T, KV, D, 3, dev)
    dout = make_input(T, H, D, 4, dev)

    # --- FlexAttention with a BlockMask of the same visibility --------------------------------
    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention

        def visible(b, h, q_idx, kv_idx):
            bq, bk = block[q_idx], block[kv_idx]
            sibling = (bq >= 0) & (bq == bk) & (step[q_idx] != step[kv_idx])
            return (kv_idx <= q_idx) & ~sibling

        extra = {}
        if "_compile" in inspect.signature(create_block_mask).parameters:
            extra["_compile"] = True  # builds the block mask in chunks, never a (T, T) tensor
        block_mask = create_block_mask(visible, None, None, T, T, device="cuda", **extra)
        flex = torch.compile(flex_attention, dynamic=False)

        def flex_attn(a, b, c):
            return flex(a, b, c, block_mask=block_mask, enable_gqa=True)

        result["flex_fwd_ms"], result["flex_fwdbwd_ms"] = fwd_and_fwdbwd(
            flex_attn, q, k, v, dout, iters, warmup)

        names = spec.get("samples") or []
        if "out" in names:
            tokens = torch.from_numpy(
                np.fromfile(os.path.join(d, "sample_tokens.bin"), dtype=np.int32)).to(dev).long()
            S = tokens.numel()
            qq, kk, vv = (x.detach().clone().requires_grad_(True) for x in (q, k, v))
            out = flex_attn(qq, kk, vv)
            check = {"out": None, "dq": None, "dk": None, "dv": None}
            refs = {"out": out.detach()}
            if "dq" in names:
                out.backward(dout)
                refs.update(dq=qq.grad, dk=kk.grad, dv=vv.grad)
            for name, ref in refs.items():
                rows = ref[0].permute(1, 0, 2)[tokens].float().reshape(S, -1)  # (S, heads * D)
                ours = np.fromfile(os.path.join(d, f"sample_{name}.bin"), dtype=np.float32)
                ours = torch.from_numpy(ours).to(dev).reshape(S, -1)
                check[name] = rel_err(ours, rows)
            result["check"] = check
            del out, qq, kk, vv
        del block_mask
    except Exception as e:  # noqa: BLE001 - a failing peer is reported, the others still run
        errors["flex"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    torch.cuda.empty_cache()

    # --- SDPA causal, flash backend only ------------------------------------------------------
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def flash_call(a, b, c, gqa):
            with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                return F.scaled_dot_product_attention(a, b, c, is_causal=True, enable_gqa=gqa)

        attn, kf, vf = gqa_or_expanded(flash_call, q, k, v, notes, "SDPA flash")
        result["flash_fwd_ms"], result["flash_fwdbwd_ms"] = fwd_and_fwdbwd(
            attn, q, kf, vf, dout, iters, warmup)
        del kf, vf
    except Exception as e:  # noqa: BLE001
        errors["sdpa_flash"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    torch.cuda.empty_cache()

    # --- SDPA with a dense boolean mask (T <= 8k) ---------------------------------------------
    if spec.get("dense_mask"):
        try:
            idx = torch.arange(T, device=dev)
            same = (block[:, None] >= 0) & (block[:, None] == block[None, :])
            sibling = same & (step[:, None] != step[None, :])
            mask = ((idx[None, :] <= idx[:, None]) & ~sibling)[None, None]  # (1, 1, T, T) bool
            del same, sibling

            def mask_attn(a, b, c):
                return F.scaled_dot_product_attention(a, b, c, attn_mask=mask)

            # As NPR's trainer (Hugging Face's sdpa path): K, V repeated to every head, then
            # SDPA with the mask; the default backend choice (memory-efficient when it applies).
            km, vm = expand_kv(q, k, v)
            notes.append("SDPA dense mask: K, V repeated to all heads (repeat_kv) outside the timing")
            result["mask_fwd_ms"], result["mask_fwdbwd_ms"] = fwd_and_fwdbwd(
                mask_attn, q, km, vm, dout, iters, warmup)
            del km, vm, mask
        except Exception as e:  # noqa: BLE001
            errors["sdpa_mask"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
    else:
        notes.append(f"SDPA dense mask not run at T={T} (the (T, T) mask alone is {T * T >> 20} MiB)")

    print(json.dumps(result))


if __name__ == "__main__":
    main()
