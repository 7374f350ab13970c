"""Plain-ops PyTorch reference of the Qwen3 decoder (Qwen3ForCausalLM architecture).

Written from scratch with elementary torch ops only (no nn.Module layers, no
scaled_dot_product_attention), so it runs on torch 1.13 CPU and can be evaluated in
float64.  It works on ONE packed batch of variable-length sequences (no padding) that may
contain parallel blocks of sibling steps (a Structure of depth 1):

  input_ids    int [T]    token ids, sequences packed back to back
  positions    int [T]    explicit RoPE position of every token
  cu_seqlens   int [S+1]  sequence boundaries in the packed order
  struct_block int [T]    id of the parallel block holding the token, -1 outside any step
  struct_step  int [T]    id of the step holding the token, -1 outside any step
  prev         int [T]    packed index whose final hidden state predicts token t, -1 = unscored

Visibility: key k is visible to query q iff same sequence, k <= q in packed order, and NOT
(struct_block[q] == struct_block[k] != -1 and struct_step[q] != struct_step[k]).

Parameters are a dict keyed by the Hugging Face names (model.embed_tokens.weight, ...).
"""

import math

import torch


# ----------------------------------------------------------------------------- config


class Qwen3Config:
    """The fields of a Hugging Face Qwen3 config.json that the math needs."""

    def __init__(self, d):
        self.vocab_size = int(d["vocab_size"])
        self.hidden_size = int(d["hidden_size"])
        self.intermediate_size = int(d["intermediate_size"])
        self.num_hidden_layers = int(d["num_hidden_layers"])
        self.num_attention_heads = int(d["num_attention_heads"])
        self.num_key_value_heads = int(d["num_key_value_heads"])
        self.head_dim = int(d.get("head_dim") or self.hidden_size // self.num_attention_heads)
        self.rope_theta = float(d["rope_theta"])
        self.rms_norm_eps = float(d["rms_norm_eps"])
        self.tie_word_embeddings = bool(d["tie_word_embeddings"])
        assert self.num_attention_heads % self.num_key_value_heads == 0
        assert self.head_dim % 2 == 0


def param_shapes(cfg):
    """Ordered {HF name: shape} of every parameter of the model (lm_head only if untied)."""
    H, I, V, D = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.head_dim
    nH, nKV = cfg.num_attention_heads, cfg.num_key_value_heads
    shapes = {"model.embed_tokens.weight": (V, H)}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (H,)
        shapes[p + "self_attn.q_proj.weight"] = (nH * D, H)
        shapes[p + "self_attn.k_proj.weight"] = (nKV * D, H)
        shapes[p + "self_attn.v_proj.weight"] = (nKV * D, H)
        shapes[p + "self_attn.o_proj.weight"] = (H, nH * D)
        shapes[p + "self_attn.q_norm.weight"] = (D,)
        shapes[p + "self_attn.k_norm.weight"] = (D,)
        shapes[p + "post_attention_layernorm.weight"] = (H,)
        shapes[p + "mlp.gate_proj.weight"] = (I, H)
        shapes[p + "mlp.up_proj.weight"] = (I, H)
        shapes[p + "mlp.down_proj.weight"] = (H, I)
    shapes["model.norm.weight"] = (H,)
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (V, H)
    return shapes


# ----------------------------------------------------------------------------- building blocks


def rms_norm(x, weight, eps):
    """x * rsqrt(mean(x^2, last dim) + eps) * weight, computed in at least float32."""
    dtype = x.dtype
    xf = x if dtype == torch.float64 else x.float()
    var = (xf * xf).mean(dim=-1, keepdim=True)
    y = xf * torch.rsqrt(var + eps)
    return weight * y.to(dtype)


def rope_cos_sin(positions, head_dim, theta, dtype):
    """cos/sin tables [T, head_dim] for explicit positions (rotate-half layout: freqs twice)."""
    half = head_dim // 2
    exponent = torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim  # 2i/D
    inv_freq = torch.pow(torch.tensor(theta, dtype=torch.float64), -exponent)  # theta^(-2i/D)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]  # [T, D/2]
    assert angles.shape[1] == half
    emb = torch.cat([angles, angles], dim=-1)  # [T, D]
    return torch.cos(emb).to(dtype), torch.sin(emb).to(dtype)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


def apply_rope(x, cos, sin):
    """x [T, heads, D]; cos/sin [T, D]."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


def visibility_mask(cu_seqlens, struct_block, struct_step):
    """Boolean [T(query), T(key)]: True where key is visible to query."""
    T = struct_block.shape[0]
    seq_id = torch.empty(T, dtype=torch.long)
    cu = [int(v) for v in cu_seqlens]
    assert cu[0] == 0 and cu[-1] == T
    for s in range(len(cu) - 1):
        seq_id[cu[s] : cu[s + 1]] = s
    idx = torch.arange(T)
    same_seq = seq_id[:, None] == seq_id[None, :]
    causal = idx[None, :] <= idx[:, None]
    blk = struct_block.long()
    stp = struct_step.long()
    same_block = (blk[:, None] == blk[None, :]) & (blk[:, None] != -1)
    sibling = same_block & (stp[:, None] != stp[None, :])
    return same_seq & causal & ~sibling


def attention(q, k, v, mask, num_kv_heads):
    """Grouped-query attention over the packed batch.

    q [T, nH, D], k/v [T, nKV, D], mask bool [T, T].  Query head h uses kv head
    h // (nH / nKV) (consecutive q heads share a kv head).  Returns [T, nH, D].
    """
    T, nH, D = q.shape
    group = nH // num_kv_heads
    k = k.repeat_interleave(group, dim=1)  # [T, nH, D]
    v = v.repeat_interleave(group, dim=1)
    scores = torch.einsum("qhd,khd->hqk", q, k) * (1.0 / math.sqrt(D))
    scores = scores.masked_fill(~mask[None, :, :], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    return torch.einsum("hqk,khd->qhd", probs, v)


# ----------------------------------------------------------------------------- model


def final_hidden(params, cfg, input_ids, positions, mask, attn_fn=None):
    """Final-normed hidden states [T, H]."""
    attn_fn = attn_fn or (lambda q, k, v: attention(q, k, v, mask, cfg.num_key_value_heads))
    T = input_ids.shape[0]
    D, nH, nKV, eps = cfg.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.rms_norm_eps
    emb = params["model.embed_tokens.weight"]
    dtype = emb.dtype
    cos, sin = rope_cos_sin(positions, D, cfg.rope_theta, dtype)
    h = emb[input_ids.long()]
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        x = rms_norm(h, params[p + "input_layernorm.weight"], eps)
        q = (x @ params[p + "self_attn.q_proj.weight"].t()).view(T, nH, D)
        k = (x @ params[p + "self_attn.k_proj.weight"].t()).view(T, nKV, D)
        v = (x @ params[p + "self_attn.v_proj.weight"].t()).view(T, nKV, D)
        q = rms_norm(q, params[p + "self_attn.q_norm.weight"], eps)
        k = rms_norm(k, params[p + "self_attn.k_norm.weight"], eps)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        a = attn_fn(q, k, v).reshape(T, nH * D)
        h = h + a @ params[p + "self_attn.o_proj.weight"].t()
        x = rms_norm(h, params[p + "post_attention_layernorm.weight"], eps)
        gate = x @ params[p + "mlp.gate_proj.weight"].t()
        up = x @ params[p + "mlp.up_proj.weight"].t()
        act = gate * torch.sigmoid(gate)  # silu
        h = h + (act * up) @ params[p + "mlp.down_proj.weight"].t()
    return rms_norm(h, params["model.norm.weight"], eps)


def lm_head_weight(params, cfg):
    return params["model.embed_tokens.weight"] if cfg.tie_word_embeddings else params["lm_head.weight"]


def log_softmax_rows(params, cfg, hidden_rows):
    """Full log-softmax over the vocabulary for hidden rows [R, H] -> [R, V]."""
    logits = hidden_rows @ lm_head_weight(params, cfg).t()
    return torch.log_softmax(logits, dim=-1)


def forward(params, cfg, batch, attn_fn=None):
    """Returns (logprobs [T], loss scalar, hidden [T, H]).

    logprobs[t] = log_softmax(lm_head(final_norm(h[prev[t]])))[input_ids[t]] where
    prev[t] != -1, else 0.  loss = mean over scored tokens of -logprobs.
    """
    input_ids, positions = batch["input_ids"], batch["positions"]
    mask = visibility_mask(batch["cu_seqlens"], batch["struct_block"], batch["struct_step"])
    hidden = final_hidden(params, cfg, input_ids, positions, mask, attn_fn)
    prev = batch["prev"].long()
    scored = (prev >= 0).nonzero().flatten()
    lsm = log_softmax_rows(params, cfg, hidden[prev[scored]])  # [N, V]
    picked = lsm.gather(1, input_ids.long()[scored][:, None]).squeeze(1)
    logprobs = torch.zeros(input_ids.shape[0], dtype=hidden.dtype)
    logprobs = logprobs.index_put((scored,), picked)
    loss = -picked.mean()
    return logprobs, loss, hidden
