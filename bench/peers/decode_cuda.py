"""Peer of bench/decode-cuda.ts: Hugging Face transformers' generate on the Qwen3-0.6B shape
(random weights, bf16, same GPU), batch 1 after a `prefix`-token prompt: greedy, `steps` new
tokens, eager (dynamic cache) and with the static cache (torch.compile left off: generate's own
static-cache path). Prints one JSON line: tokens/s of the new tokens (prefill excluded by
subtracting a 1-token generate), errors by mode."""
import json
import sys
import time

import torch
import transformers
from transformers import Qwen3Config, Qwen3ForCausalLM


def main() -> None:
    spec = json.loads(sys.argv[1])
    cfg = Qwen3Config(vocab_size=spec["vocab"], hidden_size=spec["hidden"],
                      intermediate_size=spec["intermediate"], num_hidden_layers=spec["layers"],
                      num_attention_heads=spec["heads"], num_key_value_heads=spec["kvHeads"],
                      head_dim=spec["headDim"], tie_word_embeddings=True, rope_theta=1e6,
                      max_position_embeddings=spec["prefix"] + spec["steps"] + 64)
    torch.manual_seed(0)
    model = Qwen3ForCausalLM(cfg).to(device="cuda", dtype=torch.bfloat16).eval()
    ids = torch.randint(0, spec["vocab"], (1, spec["prefix"]), device="cuda")
    out = {"eager_tok_s": None, "static_tok_s": None, "errors": {},
           "versions": f"{transformers.__version__} torch {torch.__version__}"}

    def timed(n: int, **kw) -> float:
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, **kw)
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    for name, kw in (("eager", {}), ("static", {"cache_implementation": "static"})):
        try:
            timed(4, **kw)  # warm-up
            full = min(timed(spec["steps"], **kw) for _ in range(2))
            first = min(timed(1, **kw) for _ in range(2))
            out[f"{name}_tok_s"] = (spec["steps"] - 1) / max(full - first, 1e-9)
        except Exception as e:  # noqa: BLE001 - reported, not raised
            out["errors"][name] = f"{type(e).__name__}: {e}"[:400]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
