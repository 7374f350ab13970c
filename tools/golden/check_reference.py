#!/usr/bin/python3
"""Self-checks of the plain-ops Qwen3 reference (run by make_golden.py before writing, or
standalone: /usr/bin/python3 tools/golden/check_reference.py).

 (i)   with no parallel blocks and positions 0..L-1, the packed masked reference equals an
       independent per-sequence, per-head causal implementation (explicit pairwise RoPE,
       tril mask, hand-written softmax and log-softmax);
 (i')  on the structured batch, the vectorised visibility mask equals a per-query loop that
       applies the visibility rule token by token, and every step of every block equals a
       plain run of (everything before the block) + (that step alone);
 (ii)  autograd gradients match central finite differences on random parameter entries (f64);
 (iii) sibling isolation: changing a token inside one step leaves the logprobs of every
       token of its sibling steps exactly unchanged (f64), and changes every scored token
       after the block;
 (iv)  the torch.optim.AdamW + clip_grad_norm_ run equals a hand-written AdamW.
Every check raises AssertionError on failure.
"""

import math
import os
import sys

import torch

sys.dont_write_bytecode = True  # keep tools/golden free of __pycache__
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import safetensors_io  # noqa: E402
from qwen3_reference import final_hidden, forward, lm_head_weight, visibility_mask  # noqa: E402

F64 = torch.float64


def _p64(params32, grad=False):
    return {k: v.to(F64).clone().requires_grad_(grad) for k, v in params32.items()}


# ----------------------------------------------------------------------------- (i) independent causal model


def _naive_rmsnorm(x, w, eps):
    n = x.shape[-1]
    return x / torch.sqrt((x**2).sum(dim=-1, keepdim=True) / n + eps) * w


def _naive_rope(x, pos, theta):
    """x [L, D]: rotate pairs (x_i, x_{i+D/2}) by angle pos * theta^(-2i/D)."""
    L, D = x.shape
    half = D // 2
    out = torch.empty_like(x)
    for i in range(half):
        freq = theta ** (-(2.0 * i) / D)
        ang = torch.tensor([p * freq for p in pos], dtype=x.dtype)
        c, s = torch.cos(ang), torch.sin(ang)
        a, b = x[:, i], x[:, i + half]
        out[:, i] = a * c - b * s
        out[:, i + half] = b * c + a * s
    return out


def naive_sequence_logprobs(params, cfg, ids):
    """One plain causal sequence, positions 0..L-1, returns logprobs of tokens 1..L-1."""
    L = len(ids)
    D, nH, nKV = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    group = nH // nKV
    pos = list(range(L))
    h = torch.stack([params["model.embed_tokens.weight"][i] for i in ids])
    causal = torch.tril(torch.ones(L, L, dtype=torch.bool))
    for li in range(cfg.num_hidden_layers):
        p = f"model.layers.{li}.self_attn."
        x = _naive_rmsnorm(h, params[f"model.layers.{li}.input_layernorm.weight"], cfg.rms_norm_eps)
        q = torch.matmul(x, params[p + "q_proj.weight"].T)
        k = torch.matmul(x, params[p + "k_proj.weight"].T)
        v = torch.matmul(x, params[p + "v_proj.weight"].T)
        heads = []
        for hh in range(nH):
            kv = hh // group
            qh = _naive_rope(_naive_rmsnorm(q[:, hh * D : (hh + 1) * D], params[p + "q_norm.weight"], cfg.rms_norm_eps), pos, cfg.rope_theta)
            kh = _naive_rope(_naive_rmsnorm(k[:, kv * D : (kv + 1) * D], params[p + "k_norm.weight"], cfg.rms_norm_eps), pos, cfg.rope_theta)
            vh = v[:, kv * D : (kv + 1) * D]
            s = torch.matmul(qh, kh.T) / math.sqrt(D)
            s = torch.where(causal, s, torch.full_like(s, -1e300))
            e = torch.exp(s - s.max(dim=1, keepdim=True).values) * causal
            heads.append(torch.matmul(e / e.sum(dim=1, keepdim=True), vh))
        h = h + torch.matmul(torch.cat(heads, dim=1), params[p + "o_proj.weight"].T)
        m = f"model.layers.{li}.mlp."
        x = _naive_rmsnorm(h, params[f"model.layers.{li}.post_attention_layernorm.weight"], cfg.rms_norm_eps)
        g = torch.matmul(x, params[m + "gate_proj.weight"].T)
        u = torch.matmul(x, params[m + "up_proj.weight"].T)
        h = h + torch.matmul(g / (1.0 + torch.exp(-g)) * u, params[m + "down_proj.weight"].T)
    h = _naive_rmsnorm(h, params["model.norm.weight"], cfg.rms_norm_eps)
    logits = torch.matmul(h, lm_head_weight(params, cfg).T)
    mx = logits.max(dim=1, keepdim=True).values
    lse = mx.squeeze(1) + torch.log(torch.exp(logits - mx).sum(dim=1))
    return torch.tensor([logits[t - 1, ids[t]] - lse[t - 1] for t in range(1, L)], dtype=F64)


def check_causal_equivalence(cfg, params32, batch):
    cu = [int(v) for v in batch["cu_seqlens"]]
    T = cu[-1]
    positions, prev = [], []
    for s in range(len(cu) - 1):
        for j in range(cu[s + 1] - cu[s]):
            positions.append(j)
            prev.append(cu[s] + j - 1 if j > 0 else -1)
    plain = {
        "input_ids": batch["input_ids"],
        "positions": torch.tensor(positions, dtype=torch.int32),
        "cu_seqlens": batch["cu_seqlens"],
        "struct_block": torch.full((T,), -1, dtype=torch.int32),
        "struct_step": torch.full((T,), -1, dtype=torch.int32),
        "prev": torch.tensor(prev, dtype=torch.int32),
    }
    params = _p64(params32)
    with torch.no_grad():
        lp, loss, _ = forward(params, cfg, plain)
        worst = 0.0
        losses = []
        for s in range(len(cu) - 1):
            ids = [int(v) for v in batch["input_ids"][cu[s] : cu[s + 1]]]
            ref = naive_sequence_logprobs(params, cfg, ids)
            got = lp[cu[s] + 1 : cu[s + 1]]
            assert float(lp[cu[s]]) == 0.0
            worst = max(worst, (ref - got).abs().max().item())
            losses.append(-ref)
        ref_loss = torch.cat(losses).mean().item()
    assert worst < 1e-12, worst
    assert abs(ref_loss - loss.item()) < 1e-12
    return f"(i) plain causal batch vs per-sequence/per-head implementation: max |dlogprob| = {worst:.3e} (f64), |dloss| = {abs(ref_loss - loss.item()):.3e}"


# ----------------------------------------------------------------------------- (i') structured batch


def rule_attention_fn(cfg, batch):
    """Attention that builds each query's visible key set directly from the rule, in Python."""
    cu = [int(v) for v in batch["cu_seqlens"]]
    blk = [int(v) for v in batch["struct_block"]]
    stp = [int(v) for v in batch["struct_step"]]
    seq_of = {}
    for s in range(len(cu) - 1):
        for t in range(cu[s], cu[s + 1]):
            seq_of[t] = s
    T = cu[-1]
    visible = []
    for q in range(T):
        keys = []
        for k in range(T):
            if seq_of[k] != seq_of[q] or k > q:
                continue
            if blk[q] != -1 and blk[q] == blk[k] and stp[q] != stp[k]:
                continue
            keys.append(k)
        visible.append(torch.tensor(keys))
    group = cfg.num_attention_heads // cfg.num_key_value_heads

    def fn(q, k, v):
        out = torch.empty_like(q)
        for t in range(q.shape[0]):
            keys = visible[t]
            for hh in range(q.shape[1]):
                kk = k[keys, hh // group, :]
                vv = v[keys, hh // group, :]
                s = (kk @ q[t, hh, :]) / math.sqrt(q.shape[2])
                w = torch.exp(s - s.max())
                out[t, hh, :] = (w / w.sum()) @ vv
        return out

    return fn, visible


def check_structured(cfg, params32, batch, layout):
    params = _p64(params32)
    lines = []
    with torch.no_grad():
        lp, _, hid = forward(params, cfg, batch)
        fn, visible = rule_attention_fn(cfg, batch)
        mask = visibility_mask(batch["cu_seqlens"], batch["struct_block"], batch["struct_step"])
        T = mask.shape[0]
        for t in range(T):
            row = torch.zeros(T, dtype=torch.bool)
            row[visible[t]] = True
            assert torch.equal(row, mask[t]), t
        lp2, _, _ = forward(params, cfg, batch, attn_fn=fn)
        d = (lp - lp2).abs().max().item()
        assert d < 1e-12, d
        lines.append(f"(i') vectorised mask == per-query rule loop (all {T}x{T} entries); logprobs max diff {d:.3e}")

        # each step == plain run of (everything before the block) + (this step)
        worst, n = 0.0, 0
        for seq in layout:
            for seg in seq["segments"]:
                if seg["kind"] != "block":
                    continue
                first = seg["steps"][0]["tokens"][0]
                for st in seg["steps"]:
                    a, b = st["tokens"]
                    idx = list(range(seq["start"], first)) + list(range(a, b))
                    sub = {
                        "input_ids": batch["input_ids"][idx],
                        "positions": batch["positions"][idx],
                        "cu_seqlens": torch.tensor([0, len(idx)], dtype=torch.int32),
                        "struct_block": batch["struct_block"][idx].clone(),
                        "struct_step": batch["struct_step"][idx].clone(),
                    }
                    sub["struct_block"][first - seq["start"] :] = -1  # the step alone: plain tokens
                    sub["struct_step"][first - seq["start"] :] = -1
                    m = visibility_mask(sub["cu_seqlens"], sub["struct_block"], sub["struct_step"])
                    h_sub = final_hidden(params, cfg, sub["input_ids"], sub["positions"], m)
                    worst = max(worst, (h_sub - hid[idx]).abs().max().item())
                    # the first token of the step is predicted from the token just before it in the sub-run
                    assert int(batch["prev"][a]) == (first - 1 if first > seq["start"] else -1)
                    n += 1
        assert worst < 1e-12, worst
        lines.append(f"(i') each of {n} steps == plain run of prefix + that step alone: max |dhidden| = {worst:.3e}")
    return lines


# ----------------------------------------------------------------------------- (ii) finite differences


def check_finite_differences(cfg, params32, batch, n_entries=16, seed=0, h=1e-5):
    params = _p64(params32, grad=True)
    _, loss, _ = forward(params, cfg, batch)
    loss.backward()
    g = torch.Generator().manual_seed(seed)
    names = sorted(params)
    picks = []
    # always include an embedding row of a token absent from the batch (for a tied model its
    # gradient comes from the LM head alone) and one present in it
    present = set(int(v) for v in batch["input_ids"])
    absent = [i for i in range(cfg.vocab_size) if i not in present]
    if absent:
        picks.append(("model.embed_tokens.weight", (absent[0], 3)))
    picks.append(("model.embed_tokens.weight", (int(batch["input_ids"][5]), 7)))
    while len(picks) < n_entries:
        name = names[int(torch.randint(len(names), (1,), generator=g))]
        shape = params[name].shape
        idx = tuple(int(torch.randint(s, (1,), generator=g)) for s in shape)
        picks.append((name, idx))
    worst_rel = 0.0
    with torch.no_grad():
        for name, idx in picks:
            p = params[name]
            orig = p[idx].item()
            p[idx] = orig + h
            lp = forward(params, cfg, batch)[1].item()
            p[idx] = orig - h
            lm = forward(params, cfg, batch)[1].item()
            p[idx] = orig
            fd = (lp - lm) / (2 * h)
            ag = p.grad[idx].item()
            err = abs(fd - ag)
            assert err <= 1e-9 + 1e-5 * abs(ag), (name, idx, fd, ag)
            worst_rel = max(worst_rel, err / max(abs(ag), 1e-12))
    return f"(ii) autograd vs central finite differences (h={h}) on {len(picks)} entries across {len(set(n for n, _ in picks))} tensors: max rel err {worst_rel:.3e}"


# ----------------------------------------------------------------------------- (iii) sibling isolation


def check_sibling_isolation(cfg, params32, batch, layout):
    params = _p64(params32)
    n_checks = n_after = 0
    with torch.no_grad():
        base, _, _ = forward(params, cfg, batch)
        prev = batch["prev"]
        for seq in layout:
            for seg in seq["segments"]:
                if seg["kind"] != "block":
                    continue
                block_end = seg["steps"][-1]["tokens"][1]
                for si, st in enumerate(seg["steps"]):
                    a, b = st["tokens"]
                    t = (a + b - 1) // 2  # a token inside the step
                    changed = dict(batch)
                    ids = batch["input_ids"].clone()
                    ids[t] = (int(ids[t]) + 1 + cfg.vocab_size // 2) % cfg.vocab_size
                    changed["input_ids"] = ids
                    lp, _, _ = forward(params, cfg, changed)
                    for sj, other in enumerate(seg["steps"]):
                        if sj == si:
                            continue
                        oa, ob = other["tokens"]
                        assert torch.equal(lp[oa:ob], base[oa:ob]), ("sibling changed", seg["block_id"], si, sj)
                    # everything before the changed token (other than itself) is untouched too
                    assert torch.equal(lp[:t], base[:t])
                    # every scored token after the block in this sequence whose predicting
                    # state lies after the block (so sees all steps) changes.  (The first token
                    # after the block is predicted from the last token of the LAST step, which
                    # sees only its own step: it changes only when that step is edited.)
                    for u in range(block_end, seq["end"]):
                        pu = int(prev[u])
                        if pu >= block_end or (pu >= a and pu < b and pu >= t):
                            assert lp[u].item() != base[u].item(), ("after-block token unchanged", u)
                            n_after += 1
                        elif pu >= 0:
                            assert torch.equal(lp[u], base[u]), ("token predicted from a sibling changed", u)
                    # other sequences untouched
                    outside = [u for u in range(lp.shape[0]) if u < seq["start"] or u >= seq["end"]]
                    assert torch.equal(lp[outside], base[outside])
                    n_checks += 1
    return f"(iii) sibling isolation: {n_checks} single-token edits (one per step of every block): sibling-step logprobs bit-identical, other sequences bit-identical, all {n_after} checked after-block logprobs changed (tokens predicted from a position after the block, or from the edited step's last token)"


# ----------------------------------------------------------------------------- (iv) AdamW


def manual_adamw(params32, cfg, batch, lr, betas, eps, weight_decay, clip, steps):
    params = _p64(params32, grad=True)
    names = list(params)
    m = {n: torch.zeros_like(params[n]) for n in names}
    v = {n: torch.zeros_like(params[n]) for n in names}
    b1, b2 = betas
    losses = []
    for step in range(1, steps + 1):
        for n in names:
            params[n].grad = None
        _, loss, _ = forward(params, cfg, batch)
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            total = math.sqrt(sum(float((params[n].grad ** 2).sum()) for n in names))
            scale = clip / (total + 1e-6)
            grads = {n: params[n].grad * scale if scale < 1.0 else params[n].grad for n in names}
            for n in names:
                p = params[n]
                p.mul_(1 - lr * weight_decay)
                m[n] = b1 * m[n] + (1 - b1) * grads[n]
                v[n] = b2 * v[n] + (1 - b2) * grads[n] ** 2
                mhat = m[n] / (1 - b1**step)
                vhat_sqrt = torch.sqrt(v[n]) / math.sqrt(1 - b2**step)
                p.sub_(lr * mhat / (vhat_sqrt + eps))
    return losses, {n: params[n].detach() for n in names}


def check_adamw(cfg, params32, batch):
    import make_golden as mg

    losses, norms, final = mg.adamw_run(params32, cfg, batch)
    ml, mf = manual_adamw(params32, cfg, batch, clip=mg.CLIP_NORM, steps=mg.ADAMW_STEPS, **mg.ADAMW)
    dl = max(abs(a - b) for a, b in zip(losses, ml))
    dp = max((final[n] - mf[n]).abs().max().item() for n in final)
    assert dl < 1e-12 and dp < 1e-12, (dl, dp)
    clipped = sum(1 for x in norms if x > mg.CLIP_NORM)
    return f"(iv) torch.optim.AdamW+clip_grad_norm_ vs hand-written AdamW, {len(losses)} steps: max |dloss| {dl:.3e}, max |dparam| {dp:.3e}; clipping active on {clipped}/{len(norms)} steps"


# ----------------------------------------------------------------------------- driver


def run_all(cfg, params32, batch, layout):
    lines = [check_causal_equivalence(cfg, params32, batch)]
    lines += check_structured(cfg, params32, batch, layout)
    lines.append(check_finite_differences(cfg, params32, batch))
    lines.append(check_sibling_isolation(cfg, params32, batch, layout))
    lines.append(check_adamw(cfg, params32, batch))
    return lines


def check_written(case_dir, cfg, golden, metadata):
    """Read the files back: bytes decode to the same tensors, and the f32 weights on disk
    reproduce the stored loss and logprobs."""
    g, md = safetensors_io.load_file(os.path.join(case_dir, "golden.safetensors"))
    assert md == metadata
    assert sorted(g) == sorted(golden)
    for k in golden:
        assert g[k].dtype == golden[k].dtype and torch.equal(g[k], golden[k]), k
    w, _ = safetensors_io.load_file(os.path.join(case_dir, "model.safetensors"))
    batch = {k: g[k] for k in ("input_ids", "positions", "cu_seqlens", "struct_block", "struct_step", "prev")}
    with torch.no_grad():
        lp, loss, _ = forward(_p64(w), cfg, batch)
    assert torch.equal(lp.float(), g["logprobs"]) and torch.equal(loss.float().reshape(1), g["loss"])


def main():
    import make_golden as mg
    from qwen3_reference import Qwen3Config

    torch.set_num_threads(1)
    for name in sorted(mg.CASES):
        spec = mg.CASES[name]
        cfg = Qwen3Config(mg.hf_config(spec["config"]))
        params32 = mg.init_weights(cfg, spec["seed"])
        batch, layout = mg.build_batch(spec["sequences"], cfg.vocab_size, spec["seed"])
        print(f"case {name}")
        for line in run_all(cfg, params32, batch, layout):
            print(f"  {line}")
    print("all checks passed")


if __name__ == "__main__":
    main()
