#!/usr/bin/python3
"""Writes the versioned Qwen3 golden files to test/golden/v<FORMAT_VERSION>/<case>/.

Run from anywhere with Debian's interpreter (it has torch):

    /usr/bin/python3 tools/golden/make_golden.py

Each case directory gets config.json (Hugging Face Qwen3 format), model.safetensors (the
seeded random f32 initial weights, HF names) and golden.safetensors (inputs, logprobs, loss,
gradients of every parameter, a 10-step AdamW run, dense log-softmax rows).  The reference
is evaluated in float64 from the exact f32 weights and the results stored as f32.  Before
writing, the self-checks of check_reference.py run on every case; a failing check aborts.
Output is deterministic: two runs give byte-identical files.
"""

import argparse
import json
import os
import sys

import torch

sys.dont_write_bytecode = True  # keep tools/golden free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import check_reference  # noqa: E402
import safetensors_io  # noqa: E402
from qwen3_reference import Qwen3Config, forward, log_softmax_rows, param_shapes  # noqa: E402

FORMAT_VERSION = "1"
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
OUT_ROOT = os.path.join(REPO_ROOT, "test", "golden", "v" + FORMAT_VERSION)

COMPUTE_DTYPE = torch.float64
ADAMW = {"lr": 1e-3, "betas": (0.9, 0.95), "eps": 1e-8, "weight_decay": 0.1}
CLIP_NORM = 1.0
ADAMW_STEPS = 10

# Batch layouts: a sequence is a list of segments, ("plain", n) = n ordinary tokens,
# ("block", [l0, l1, ...]) = one parallel block whose steps have lengths l0, l1, ...
CASES = {
    "tiny_tied": {
        "seed": 1234,
        "config": {
            "vocab_size": 97,
            "hidden_size": 64,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "rope_theta": 10000.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True,
            "max_position_embeddings": 512,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
        "sequences": [
            [("plain", 29)],
            [("plain", 9), ("block", [5, 8, 3]), ("plain", 12)],
            # two parallel blocks separated by 3 shared tokens
            [("plain", 7), ("block", [4, 6]), ("plain", 3), ("block", [3, 5, 2, 4]), ("plain", 9)],
        ],
    },
    "tiny_untied": {
        "seed": 5678,
        "config": {
            "vocab_size": 131,
            "hidden_size": 48,
            "intermediate_size": 80,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "head_dim": 12,
            "rope_theta": 1000000.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
            "max_position_embeddings": 512,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
        "sequences": [
            # two parallel blocks directly adjacent (no token between them)
            [("plain", 5), ("block", [5, 7]), ("block", [2, 4, 3, 6]), ("plain", 11)],
            [("plain", 31)],
            [("plain", 11), ("block", [6, 3, 9]), ("plain", 8)],
        ],
    },
}


def hf_config(c):
    """A complete Hugging Face Qwen3 config.json dict."""
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": c["bos_token_id"],
        "eos_token_id": c["eos_token_id"],
        "head_dim": c["head_dim"],
        "hidden_act": "silu",
        "hidden_size": c["hidden_size"],
        "initializer_range": 0.02,
        "intermediate_size": c["intermediate_size"],
        "max_position_embeddings": c["max_position_embeddings"],
        "max_window_layers": c["num_hidden_layers"],
        "model_type": "qwen3",
        "num_attention_heads": c["num_attention_heads"],
        "num_hidden_layers": c["num_hidden_layers"],
        "num_key_value_heads": c["num_key_value_heads"],
        "rms_norm_eps": c["rms_norm_eps"],
        "rope_scaling": None,
        "rope_theta": c["rope_theta"],
        "sliding_window": None,
        "tie_word_embeddings": c["tie_word_embeddings"],
        "torch_dtype": "float32",
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": c["vocab_size"],
    }


def config_json(d):
    """config.json text: sorted keys, 2-space indent, short arrays inline, exponents without
    leading zeros (1e-6), i.e. already in the form the repository's biome formatter wants."""

    def scalar(v):
        if isinstance(v, float):
            r = repr(v)
            if "e" in r:
                mant, exp = r.split("e")
                sign = "-" if exp.startswith("-") else ""
                r = f"{mant}e{sign}{exp.lstrip('+-').lstrip('0') or '0'}"
            return r
        return json.dumps(v)

    lines = ["{"]
    keys = sorted(d)
    for i, k in enumerate(keys):
        v = d[k]
        text = "[" + ", ".join(scalar(x) for x in v) + "]" if isinstance(v, list) else scalar(v)
        lines.append(f"  {json.dumps(k)}: {text}" + ("," if i + 1 < len(keys) else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == d
    return text


def init_weights(cfg, seed):
    """Seeded f32 weights: matrices N(0, 0.02^2), norm weights 1 + 0.1 * N(0, 1)."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in param_shapes(cfg).items():
        if len(shape) == 1:
            w = 1.0 + 0.1 * torch.randn(shape, generator=g, dtype=torch.float32)
        else:
            w = 0.02 * torch.randn(shape, generator=g, dtype=torch.float32)
        params[name] = w.contiguous()
    return params


def build_batch(sequences, vocab_size, seed):
    """Packs the sequences; returns (batch of int32 tensors, layout description).

    prev: t-1 within the sequence, except the first token of every step of a block, which
    is predicted from the last token before the block's first step; -1 for the first token
    of a sequence.  Positions restart at the same value in every step and continue after the
    block from one past the longest step.  Block and step ids are unique within the batch.
    """
    g = torch.Generator().manual_seed(seed + 1)
    positions, blocks, steps, prev, cu = [], [], [], [], [0]
    layout = []
    block_id = step_id = 0
    for seq in sequences:
        seq_start = len(positions)
        pos = 0
        seq_desc = {"start": seq_start, "segments": []}
        for kind, arg in seq:
            if kind == "plain":
                start = len(positions)
                for _ in range(arg):
                    t = len(positions)
                    prev.append(t - 1 if t > seq_start else -1)
                    positions.append(pos)
                    blocks.append(-1)
                    steps.append(-1)
                    pos += 1
                seq_desc["segments"].append(
                    {"kind": "plain", "tokens": [start, len(positions)], "positions": [pos - arg, pos]}
                )
            elif kind == "block":
                anchor = len(positions) - 1 if len(positions) > seq_start else -1
                p0 = pos
                step_desc = []
                for length in arg:
                    start = len(positions)
                    for j in range(length):
                        t = len(positions)
                        prev.append(anchor if j == 0 else t - 1)
                        positions.append(p0 + j)
                        blocks.append(block_id)
                        steps.append(step_id)
                    step_desc.append(
                        {"step_id": step_id, "tokens": [start, len(positions)], "positions": [p0, p0 + length]}
                    )
                    step_id += 1
                seq_desc["segments"].append(
                    {"kind": "block", "block_id": block_id, "anchor": anchor, "steps": step_desc}
                )
                block_id += 1
                pos = p0 + max(arg)
            else:
                raise ValueError(kind)
        seq_desc["end"] = len(positions)
        layout.append(seq_desc)
        cu.append(len(positions))
    T = len(positions)
    input_ids = torch.randint(0, vocab_size, (T,), generator=g, dtype=torch.int64)
    i32 = lambda v: torch.tensor(v, dtype=torch.int32)  # noqa: E731
    batch = {
        "input_ids": input_ids.to(torch.int32),
        "positions": i32(positions),
        "cu_seqlens": i32(cu),
        "struct_block": i32(blocks),
        "struct_step": i32(steps),
        "prev": i32(prev),
    }
    return batch, layout


def to_compute(params32):
    return {k: v.to(COMPUTE_DTYPE).clone().requires_grad_(True) for k, v in params32.items()}


def logits_row_indices(batch, layout):
    """A handful of scored tokens: first scored token of each sequence, first token of every
    step of the first block of each sequence, first token after that block, last token."""
    prev = batch["prev"]
    idx = set()
    for seq in layout:
        idx.add(seq["start"] + 1)
        blocks = [s for s in seq["segments"] if s["kind"] == "block"]
        if blocks:
            b = blocks[0]
            for st in b["steps"]:
                idx.add(st["tokens"][0])
            after = b["steps"][-1]["tokens"][1]
            if after < seq["end"]:
                idx.add(after)
    idx.add(int(prev.shape[0]) - 1)
    idx = sorted(i for i in idx if int(prev[i]) >= 0)
    return idx


def adamw_run(params32, cfg, batch, steps=ADAMW_STEPS):
    """torch.optim.AdamW with global-norm clipping before each step. Returns (losses, norms, final)."""
    params = to_compute(params32)
    names = list(params)
    opt = torch.optim.AdamW([params[n] for n in names], **ADAMW)
    losses, norms = [], []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        _, loss, _ = forward(params, cfg, batch)
        losses.append(loss.item())
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([params[n] for n in names], CLIP_NORM)
        norms.append(norm.item())
        opt.step()
    final = {n: params[n].detach().clone() for n in names}
    return losses, norms, final


def make_case(name, spec, out_root, run_checks=True):
    cfg_dict = hf_config(spec["config"])
    cfg = Qwen3Config(cfg_dict)
    params32 = init_weights(cfg, spec["seed"])
    batch, layout = build_batch(spec["sequences"], cfg.vocab_size, spec["seed"])

    if run_checks:
        results = check_reference.run_all(cfg, params32, batch, layout)
        for line in results:
            print(f"  [{name}] {line}")

    # loss, logprobs and gradients in float64
    params = to_compute(params32)
    logprobs, loss, hidden = forward(params, cfg, batch)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in params.items()}

    rows_idx = logits_row_indices(batch, layout)
    with torch.no_grad():
        prev = batch["prev"].long()
        rows = log_softmax_rows(params, cfg, hidden[prev[torch.tensor(rows_idx)]])
        # consistency: each row, read at the token id, is that token's logprob
        for r, t in enumerate(rows_idx):
            assert abs(rows[r, int(batch["input_ids"][t])].item() - logprobs[t].item()) < 1e-12

    losses, norms, final = adamw_run(params32, cfg, batch)
    assert abs(losses[0] - loss.item()) < 1e-12

    f32 = lambda t: t.detach().to(torch.float32).contiguous()  # noqa: E731
    golden = dict(batch)
    golden["logprobs"] = f32(logprobs)
    golden["loss"] = f32(loss.reshape(1))
    for n, g in grads.items():
        golden["grad." + n] = f32(g)
    golden["adamw_losses"] = torch.tensor(losses, dtype=torch.float32)
    golden["adamw_grad_norms"] = torch.tensor(norms, dtype=torch.float32)
    for n, p in final.items():
        golden["final." + n] = f32(p)
    golden["logits_rows"] = f32(rows)
    golden["logits_rows_index"] = torch.tensor(rows_idx, dtype=torch.int32)

    metadata = {
        "format_version": FORMAT_VERSION,
        "torch_version": torch.__version__,
        "generator": "tools/golden/make_golden.py",
        "case": name,
        "lr": repr(ADAMW["lr"]),
        "betas": json.dumps(list(ADAMW["betas"])),
        "eps": repr(ADAMW["eps"]),
        "weight_decay": repr(ADAMW["weight_decay"]),
        "clip_norm": repr(CLIP_NORM),
        "adamw_steps": str(ADAMW_STEPS),
        "loss": "mean of -logprob over scored tokens",
        "compute_dtype": "float64" if COMPUTE_DTYPE == torch.float64 else "float32",
        "seed": str(spec["seed"]),
        "batch_layout": json.dumps(layout, sort_keys=True, separators=(",", ":")),
    }

    case_dir = os.path.join(out_root, name)
    os.makedirs(case_dir, exist_ok=True)
    with open(os.path.join(case_dir, "config.json"), "w") as f:
        f.write(config_json(cfg_dict))
    safetensors_io.save_file(params32, os.path.join(case_dir, "model.safetensors"), {"format": "pt"})
    safetensors_io.save_file(golden, os.path.join(case_dir, "golden.safetensors"), metadata)

    # read back what was written and verify it reproduces the golden
    check_reference.check_written(case_dir, cfg, golden, metadata)

    T = int(batch["input_ids"].shape[0])
    n_scored = int((batch["prev"] >= 0).sum())
    print(
        f"  [{name}] T={T} scored={n_scored} loss={loss.item():.10f} "
        f"adamw_losses[-1]={losses[-1]:.10f} grad_norms={['%.4f' % v for v in norms]}"
    )
    return case_dir


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=OUT_ROOT, help="output root (default: test/golden/v%s)" % FORMAT_VERSION)
    ap.add_argument("--skip-checks", action="store_true", help="do not run the self-checks first")
    ap.add_argument("--case", action="append", help="only this case (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # fixed reduction order -> byte-identical output
    for name in sorted(CASES):
        if args.case and name not in args.case:
            continue
        print(f"case {name}")
        d = make_case(name, CASES[name], args.out, run_checks=not args.skip_checks)
        for fn in sorted(os.listdir(d)):
            print(f"  wrote {os.path.relpath(os.path.join(d, fn), REPO_ROOT)} ({os.path.getsize(os.path.join(d, fn))} bytes)")


if __name__ == "__main__":
    main()
