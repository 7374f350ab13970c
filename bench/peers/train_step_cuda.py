"""PyTorch CUDA peer for `npm run bench -- train-step --backend cuda`
(bench/train-step-cuda.ts): one forward + backward + AdamW step of Hugging Face transformers'
Qwen3ForCausalLM built from a config (random weights, no download) on the GPU, with
attn_implementation="sdpa", fused AdamW (torch.optim.AdamW(fused=True)) and global-norm
clipping 1.0, on `batch` x `seq_len` random tokens.

The peer does DENSE CAUSAL attention over batch x seq_len (no padding, no mask: SDPA's causal
path), not our NPR Structure: same token count, more attention pairs. The loss is the mean
next-token negative log-likelihood over the scored tokens (every token but each row's first),
i.e. -(sum of token logprobs) / scored, the same objective and gradient scale as ours. Logits
are the model's full (tokens, vocab) output, up-cast to fp32 for the loss, as Hugging Face's
own loss does.

mode "amp": fp32 master weights and AdamW moments, forward under torch.autocast(bfloat16) (the
same mixed-precision recipe as ours). mode "bf16": weights, gradients and moments all bf16 (less
work and memory; reported beside it). If a step does not fit in memory it is retried as 2, then
4 micro-batches of the same tokens (gradient accumulation) and `micro_batches` says so.

Timing: torch.cuda.synchronize() around each step; `warmup` steps first; best of `steps`.

usage: python3 train_step_cuda.py '<json: {config: HF Qwen3 config dict, batch, seq_len,
steps, warmup, mode}>'
prints one JSON line: {tok_per_s, step_s, params, micro_batches, mode, peak_mem_bytes, device,
torch_version, transformers_version, attn_implementation, notes}.
"""

import gc
import json
import sys
import time

import torch
import torch.nn.functional as F


def main():
    spec = json.loads(sys.argv[1])
    import transformers
    from transformers import AutoModelForCausalLM, Qwen3Config

    mode = spec.get("mode", "amp")
    if mode not in ("amp", "bf16"):
        raise SystemExit(f"mode must be 'amp' or 'bf16', got {mode!r}")
    B, L = int(spec["batch"]), int(spec["seq_len"])
    notes = []
    torch.manual_seed(0)
    dev = torch.device("cuda")

    cfg = Qwen3Config(**spec["config"])
    cfg.use_cache = False
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa")
    model.to(dev)
    if mode == "bf16":
        model.to(torch.bfloat16)
    model.train()
    attn_impl = getattr(model.config, "_attn_implementation", None)
    params = sum(p.numel() for p in model.parameters())  # tied embedding counted once
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), eps=1e-8,
                            weight_decay=0.1, fused=True)
    ids = torch.randint(0, cfg.vocab_size, (B, L), device=dev)
    scored = B * (L - 1)

    def step(micro):
        opt.zero_grad(set_to_none=True)
        for chunk in ids.chunk(micro, dim=0):
            if mode == "amp":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    logits = model(input_ids=chunk, use_cache=False).logits
            else:
                logits = model(input_ids=chunk, use_cache=False).logits
            V = logits.shape[-1]
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, V).float(), chunk[:, 1:].reshape(-1),
                                   reduction="sum") / scored
            loss.backward()
            del logits, loss
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    best, micro_used = None, None
    for micro in (1, 2, 4):
        if B % micro != 0:
            continue
        try:
            for _ in range(int(spec.get("warmup", 2))):
                step(micro)
            torch.cuda.synchronize()
            times = []
            for _ in range(int(spec["steps"])):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                step(micro)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            best, micro_used = min(times), micro
            break
        except torch.cuda.OutOfMemoryError:
            opt.zero_grad(set_to_none=True)
            gc.collect()
            torch.cuda.empty_cache()
            notes.append(f"out of device memory with {micro} micro-batch(es) of "
                         f"{B // micro} x {L}; retrying smaller")
    if best is None:
        raise SystemExit("the peer step does not fit in device memory even as 4 micro-batches")

    print(json.dumps({
        "tok_per_s": B * L / best,
        "step_s": best,
        "params": params,
        "micro_batches": micro_used,
        "mode": mode,
        "peak_mem_bytes": torch.cuda.max_memory_allocated(),
        "device": torch.cuda.get_device_name(0),
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "attn_implementation": attn_impl,
        "notes": notes,
    }))


if __name__ == "__main__":
    main()
