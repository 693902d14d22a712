"""PyTorch checkpoints written by real torch.save, for the .bin converter's tests (issue 19).

Run with an interpreter that has torch (Debian's python3-torch: /usr/bin/python3), not the
project's .venv (PyPI's torch pulls CUDA). Writes under OUT:

  tiny/       a llama model (config.json, pytorch_model.bin) whose state dict has tied
              weights (lm_head.weight is embed_tokens.weight), views with non-zero storage
              offsets into one fused qkv storage, a transposed (non-contiguous) view, and
              float32, float16 and bfloat16 tensors
  sharded/    the same state dict in two shards with pytorch_model.bin.index.json, as
              transformers' save_pretrained(safe_serialization=False) lays it out
  buffers/    a state dict with int64, int32, uint8 and bool tensors and a 0-d scalar
  evil/       a pickle whose REDUCE calls os.system (touching OUT/pwned were it run)
  legacy/     torch.save(..., _use_new_zipfile_serialization=False)
  expected/   what torch.load gives for each of those: <dir>.npz (raw bytes as uint8, made
              contiguous) and <dir>.json (dtype and shape per tensor)

Usage: /usr/bin/python3 make_torch_fixtures.py OUT
"""
import json
import os
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64",
          torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL", torch.float64: "F64"}
CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "max_position_embeddings": 256, "vocab_size": 384, "tie_word_embeddings": False,
    "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32",
}


def llama_state_dict():
    g = torch.Generator().manual_seed(19)
    h, inter, vocab = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["vocab_size"]
    head_dim = h // CONFIG["num_attention_heads"]
    kv = CONFIG["num_key_value_heads"] * head_dim
    sd = OrderedDict()
    embed = torch.randn(vocab, h, generator=g) * 0.05
    sd["model.embed_tokens.weight"] = embed
    for i in range(CONFIG["num_hidden_layers"]):
        dt = torch.float32 if i == 0 else torch.bfloat16
        p = f"model.layers.{i}."
        # One fused storage; q, k and v are views into it at offsets 0, h*h and (h+kv)*h.
        qkv = (torch.randn(h + 2 * kv, h, generator=g) * 0.05).to(dt)
        sd[p + "self_attn.q_proj.weight"] = qkv[:h]
        sd[p + "self_attn.k_proj.weight"] = qkv[h:h + kv]
        sd[p + "self_attn.v_proj.weight"] = qkv[h + kv:]
        # Stored transposed: a non-contiguous view.
        sd[p + "self_attn.o_proj.weight"] = (torch.randn(h, h, generator=g) * 0.05).to(dt).t()
        sd[p + "mlp.gate_proj.weight"] = (torch.randn(inter, h, generator=g) * 0.05).to(dt)
        sd[p + "mlp.up_proj.weight"] = (torch.randn(inter, h, generator=g) * 0.05).to(dt)
        sd[p + "mlp.down_proj.weight"] = (torch.randn(h, inter, generator=g) * 0.05).to(dt)
        sd[p + "input_layernorm.weight"] = (1 + 0.1 * torch.randn(h, generator=g)).half()
        sd[p + "post_attention_layernorm.weight"] = (1 + 0.1 * torch.randn(h, generator=g)).half()
    sd["model.norm.weight"] = torch.ones(h)
    sd["lm_head.weight"] = embed  # tied: the same storage under a second name
    assert sd["model.layers.0.self_attn.k_proj.weight"].storage_offset() == h * h
    assert not sd["model.layers.0.self_attn.o_proj.weight"].is_contiguous()
    return sd


def expected(sd, out: Path, name: str):
    arrays, meta = {}, {}
    for k, t in sd.items():
        c = t.contiguous()
        if c.dtype == torch.bool:
            data = c.numpy().astype(np.uint8).tobytes()
        elif c.dtype == torch.bfloat16:
            data = c.view(torch.int16).numpy().tobytes()
        else:
            data = c.numpy().tobytes()
        arrays[k] = np.frombuffer(data, dtype=np.uint8)
        meta[k] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape)}
    np.savez(out / f"{name}.npz", **arrays)
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))


def main(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    exp = out / "expected"
    exp.mkdir(exist_ok=True)
    sd = llama_state_dict()

    tiny = out / "tiny"
    tiny.mkdir(exist_ok=True)
    torch.save(sd, tiny / "pytorch_model.bin")
    (tiny / "config.json").write_text(json.dumps(CONFIG, indent=2))
    (tiny / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}))
    (tiny / "modeling_evil.py").write_text("raise SystemExit('never copied')\n")
    loaded = torch.load(tiny / "pytorch_model.bin")
    assert loaded["lm_head.weight"].data_ptr() == loaded["model.embed_tokens.weight"].data_ptr()
    expected(loaded, exp, "tiny")

    sharded = out / "sharded"
    sharded.mkdir(exist_ok=True)
    keys = list(sd)
    parts = [keys[: len(keys) // 2], keys[len(keys) // 2:]]
    weight_map = {}
    for i, part in enumerate(parts):
        fname = f"pytorch_model-{i + 1:05d}-of-{len(parts):05d}.bin"
        torch.save(OrderedDict((k, sd[k]) for k in part), sharded / fname)
        weight_map.update({k: fname for k in part})
    (sharded / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in sd.values())},
         "weight_map": weight_map}, indent=2))
    (sharded / "config.json").write_text(json.dumps(CONFIG, indent=2))
    merged = OrderedDict()
    for i in range(len(parts)):
        merged.update(torch.load(sharded / f"pytorch_model-{i + 1:05d}-of-{len(parts):05d}.bin"))
    expected(merged, exp, "sharded")

    buffers = out / "buffers"
    buffers.mkdir(exist_ok=True)
    bsd = OrderedDict([
        ("position_ids", torch.arange(64, dtype=torch.int64).reshape(1, 64)),
        ("counts", torch.tensor([3, -7, 2**31 - 1], dtype=torch.int32)),
        ("mask", torch.tril(torch.ones(8, 8, dtype=torch.uint8))),
        ("flags", torch.tensor([True, False, True])),
        ("scale", torch.tensor(0.125)),
        ("wide", torch.arange(12, dtype=torch.float64).reshape(3, 4)[:, 1:3]),
    ])
    torch.save({"nested": bsd, "step": torch.tensor(7)}, buffers / "pytorch_model.bin")
    (buffers / "config.json").write_text(json.dumps({"model_type": "custom"}))
    loaded = torch.load(buffers / "pytorch_model.bin")
    flat = OrderedDict((f"nested.{k}", v) for k, v in loaded["nested"].items())
    flat["step"] = loaded["step"]
    expected(flat, exp, "buffers")

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {out / 'pwned'}",))

    evil = out / "evil"
    evil.mkdir(exist_ok=True)
    torch.save({"w": torch.zeros(4), "x": Evil()}, evil / "pytorch_model.bin")
    (evil / "config.json").write_text(json.dumps(CONFIG))

    legacy = out / "legacy"
    legacy.mkdir(exist_ok=True)
    torch.save({"w": torch.zeros(4)}, legacy / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    (legacy / "config.json").write_text(json.dumps(CONFIG))
    print(torch.__version__)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
