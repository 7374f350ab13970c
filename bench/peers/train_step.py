"""PyTorch CPU peer for `npm run bench -- train-step`: one forward + backward + AdamW step of a
Qwen3 model on a packed batch, timed, with the same config, batch layout and thread count as
our run. The model is tools/golden/qwen3_reference.py in float32 (plain ops, as torch 1.13 has
no scaled_dot_product_attention); attention runs one sequence at a time with a dense mask,
the way NPR's trainer does it, and the full logits of the scored tokens are materialised.

usage: python3 train_step.py '<json: {config, seq_len, sequences, threads, steps}>'
prints one JSON line: {"tok_per_s", "step_s", "peak_rss_bytes", "torch_version"}.
"""

import json
import math
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "golden"))

import torch  # noqa: E402

import qwen3_reference as ref  # noqa: E402


def per_sequence_attention(cu, num_kv_heads):
    def attn(q, k, v):
        outs = []
        for s in range(len(cu) - 1):
            a, b = cu[s], cu[s + 1]
            L = b - a
            mask = torch.ones(L, L, dtype=torch.bool).tril()
            outs.append(ref.attention(q[a:b], k[a:b], v[a:b], mask, num_kv_heads))
        return torch.cat(outs, dim=0)

    return attn


def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(0)
    cfg = ref.Qwen3Config(spec["config"])
    params = {}
    for name, shape in ref.param_shapes(cfg).items():
        t = torch.ones(shape) if len(shape) == 1 else torch.randn(shape) * 0.02
        params[name] = t.requires_grad_(True)
    L, S = int(spec["seq_len"]), int(spec["sequences"])
    T = L * S
    cu = [i * L for i in range(S + 1)]
    batch = {
        "input_ids": torch.randint(0, cfg.vocab_size, (T,), dtype=torch.int32),
        "positions": torch.arange(T, dtype=torch.int32) % L,
        "cu_seqlens": torch.tensor(cu, dtype=torch.int32),
        "struct_block": torch.full((T,), -1, dtype=torch.int32),
        "struct_step": torch.full((T,), -1, dtype=torch.int32),
        "prev": torch.tensor([-1 if t % L == 0 else t - 1 for t in range(T)], dtype=torch.int32),
    }
    attn = per_sequence_attention(cu, cfg.num_key_value_heads)
    opt = torch.optim.AdamW(list(params.values()), lr=1e-5, betas=(0.9, 0.95), weight_decay=0.1)

    def step():
        opt.zero_grad(set_to_none=True)
        _, loss, _ = ref.forward(params, cfg, batch, attn_fn=attn)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()

    step()  # warm-up: allocations, first-touch
    times = []
    for _ in range(int(spec["steps"])):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(json.dumps({
        "tok_per_s": T / best,
        "step_s": best,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch_version": torch.__version__,
    }))


if __name__ == "__main__":
    main()
