"""Tiny MLX models of real architectures, made by MLX itself, served by the hub emulator.

Each model is built by mlx-lm from a small config of a real architecture (llama, qwen2), its
weights random from a fixed seed, cast to bfloat16 as mlx-community's are, quantized by
mlx-lm (`quantize_model`: 4-bit group 64, and one 8-bit) and saved by mlx-lm's own save path
(`save_model`, `save_config`). The tokenizer is a byte-level BPE trained by the `tokenizers`
library on a fixed text. Greedy generation of 16 tokens from a fixed prompt is run on each
model in memory, before it is saved, and written to expected.json: what a loader of the
pulled files must reproduce exactly.

Writes OUT/:
  repos/               hub emulator repos (tools/EMULATOR.md "On-disk format")
  models/<name>/       the same models as plain directories (their newest revision)
  broken/<variant>/    models an MLX loader refuses: no tokenizer, a tensor of the wrong shape
                       for config.json, a wrong group_size (top level: MLX Swift refuses,
                       mlx-lm infers it; per layer: both refuse), a missing shard
  expected.json        {"prompt", "max_tokens", "repos": {repo: {"v1": {"commit", "tokens"},
                       "v2": {...}}}, "models": {name: repo}, "broken": [variant...]}

Usage: python make_mlx_fixtures.py OUT   (needs mlx, mlx-lm, tokenizers: tools/requirements.txt)
"""
import contextlib
import hashlib
import io
import json
import shutil
import sys
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten, tree_unflatten
from mlx_lm import utils as mlx_utils
from mlx_lm.generate import generate_step
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

ORG = "mlx-test"
PROMPT = "the quick brown fox jumps over"
MAX_TOKENS = 16
TEXT = [
    "the quick brown fox jumps over the lazy dog",
    "a model that must load offline is a model kept whole on the device",
    "every byte verified, every range resumed, every revision recorded",
    "pack my box with five dozen liquor jugs",
    "sphinx of black quartz judge my vow",
    "the five boxing wizards jump quickly over the lazy dogs",
] * 8

BASE = {"hidden_size": 128, "num_hidden_layers": 2, "intermediate_size": 256,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 256}
ARCHS = {
    "llama": {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "rms_norm_eps": 1e-5,
              "rope_theta": 10000.0, "tie_word_embeddings": False, **BASE},
    "qwen2": {"model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "rms_norm_eps": 1e-6,
              "rope_theta": 1000000.0, "tie_word_embeddings": True, **BASE},
}
# Wider and deeper: ~10 MB of weights, past the 8 MiB below which modelsync fetches a file into
# memory, so a pull killed mid-file leaves durable bytes that the next pull resumes from.
ARCHS["llama-wide"] = dict(ARCHS["llama"], hidden_size=512, intermediate_size=2048,
                           num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=4)
# name -> (architecture, bits, sharded, seed)
MODELS = {
    "tiny-llama-4bit": ("llama", 4, False, 1),
    "tiny-qwen2-4bit": ("qwen2", 4, False, 2),
    "tiny-qwen2-8bit": ("qwen2", 8, False, 3),
    "tiny-llama-4bit-sharded": ("llama", 4, True, 4),
    "small-llama-4bit": ("llama-wide", 4, False, 5),
}
LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")


def train_tokenizer(out: Path) -> int:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(TEXT, trainer)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "model_max_length": 256, "clean_up_tokenization_spaces": False,
    }, indent=2) + "\n")
    return tok.get_vocab_size()


def greedy_tokens(model, prompt_ids):
    out = []
    for token, _ in generate_step(mx.array(prompt_ids), model, max_tokens=MAX_TOKENS):
        out.append(int(token))
    return out


def build(arch: str, bits: int, seed: int, vocab: int):
    config = dict(ARCHS[arch], vocab_size=vocab)
    model_class, args_class = mlx_utils._get_classes(config)
    mx.random.seed(seed)
    model = model_class(args_class.from_dict(config))
    # Wider than MLX's default init, so that greedy decoding wanders instead of repeating one
    # token (a changed tensor then changes the tokens); norms stay at MLX's init.
    model.update(tree_unflatten([
        (k, v if "norm" in k else mx.random.normal(v.shape) * 0.6)
        for k, v in tree_flatten(model.parameters())]))
    model.set_dtype(mx.bfloat16)
    mx.eval(model.parameters())
    with contextlib.redirect_stdout(io.StringIO()):  # quantize_model prints bits per weight
        model, config = mlx_utils.quantize_model(model, config, group_size=64, bits=bits)
    mx.eval(model.parameters())
    return model, config


def save(model, config, tok_dir: Path, out: Path, sharded: bool):
    out.mkdir(parents=True)
    original = mlx_utils.make_shards
    if sharded:  # mlx-lm shards at 5 GB; the same save path, two shards of a tiny model
        def two_shards(weights, max_file_size_gb=0):
            keys = list(weights)
            half = len(keys) // 2
            return [{k: weights[k] for k in keys[:half]}, {k: weights[k] for k in keys[half:]}]
        mlx_utils.make_shards = two_shards
    try:
        mlx_utils.save_model(out, model)
    finally:
        mlx_utils.make_shards = original
    mlx_utils.save_config(dict(config), out / "config.json")
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tok_dir / f, out / f)


def change_one_tensor(model):
    """v2: the final norm's weights redrawn (one tensor's bytes change, nothing else)."""
    w = model.model.norm.weight
    model.model.norm.weight = mx.random.uniform(0.2, 2.0, w.shape).astype(w.dtype)
    mx.eval(model.parameters())


# ---- hub emulator repos (tools/EMULATOR.md) ----

def git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write_repo(repos: Path, repo: str, commits: list, refs: dict):
    """commits: [(title, {path: bytes})] oldest first; refs: {name: index into commits}."""
    root = repos / repo
    (root / "objects").mkdir(parents=True)
    shas, out, parent = [], {}, None
    for n, (title, files) in enumerate(commits):
        rows = []
        for path in sorted(files):
            data = files[path]
            sha256 = hashlib.sha256(data).hexdigest()
            (root / "objects" / sha256).write_bytes(data)
            row = {"path": path, "size": len(data), "object": sha256}
            if path.endswith(LFS_SUFFIXES):
                pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n"
                           f"size {len(data)}\n").encode()
                row.update(git_oid=git_oid(pointer), lfs_sha256=sha256, pointer_size=len(pointer))
            else:
                row["git_oid"] = git_oid(data)
            rows.append(row)
        listing = "".join(f"{r['git_oid']} {r['path']}\n" for r in rows)
        sha = hashlib.sha1(f"{parent}\n{title}\n{listing}".encode()).hexdigest()
        out[sha] = {"parent": parent, "title": title,
                    "date": f"2026-01-0{n + 1}T00:00:00.000Z", "files": rows}
        shas.append(sha)
        parent = sha
    (root / "repo.json").write_text(json.dumps({
        "id": repo, "gated": False, "private": False,
        "refs": {name: shas[i] for name, i in refs.items()}, "commits": out}, indent=1))
    return shas


def read_dir(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def make_broken(good: Path, sharded: Path, broken: Path):
    """Variants MLX must refuse, each one fault."""
    def variant(name, src):
        d = broken / name
        shutil.copytree(src, d)
        return d

    d = variant("missing-tokenizer", good)
    (d / "tokenizer.json").unlink()
    d = variant("wrong-shape", good)  # config disagrees with one tensor's shape
    cfg = json.loads((d / "config.json").read_text())
    cfg["intermediate_size"] = cfg["intermediate_size"] * 2
    (d / "config.json").write_text(json.dumps(cfg, indent=4))
    d = variant("wrong-group-size", good)
    cfg = json.loads((d / "config.json").read_text())
    for key in ("quantization", "quantization_config"):
        cfg[key]["group_size"] = 32
    (d / "config.json").write_text(json.dumps(cfg, indent=4))
    d = variant("wrong-group-size-layer", good)  # a per-layer entry, as mlx-lm writes them
    cfg = json.loads((d / "config.json").read_text())
    for key in ("quantization", "quantization_config"):
        cfg[key]["model.layers.0.mlp.down_proj"] = {"group_size": 32, "bits": 4}
    (d / "config.json").write_text(json.dumps(cfg, indent=4))
    d = variant("missing-shard", sharded)
    (d / "model-00002-of-00002.safetensors").unlink()
    return ["missing-tokenizer", "wrong-shape", "wrong-group-size", "wrong-group-size-layer",
            "missing-shard"]


def main(out: Path):
    if out.exists():
        shutil.rmtree(out)
    tok_dir = out / "tokenizer"
    tok_dir.mkdir(parents=True)
    vocab = train_tokenizer(tok_dir)
    prompt_ids = Tokenizer.from_file(str(tok_dir / "tokenizer.json")).encode(PROMPT).ids
    expected = {"prompt": PROMPT, "prompt_ids": prompt_ids, "max_tokens": MAX_TOKENS,
                "repos": {}, "models": {}}
    for name, (arch, bits, sharded, seed) in MODELS.items():
        repo = f"{ORG}/{name}"
        model, config = build(arch, bits, seed, vocab)
        v1_tokens = greedy_tokens(model, prompt_ids)
        v1_dir = out / "staging" / name / "v1"
        save(model, config, tok_dir, v1_dir, sharded)
        change_one_tensor(model)
        v2_tokens = greedy_tokens(model, prompt_ids)
        v2_dir = out / "staging" / name / "v2"
        save(model, config, tok_dir, v2_dir, sharded)
        shas = write_repo(out / "repos", repo, [("v1", read_dir(v1_dir)), ("v2", read_dir(v2_dir))],
                          {"main": 1, "v1": 0})
        expected["repos"][repo] = {"v1": {"commit": shas[0], "tokens": v1_tokens},
                                   "v2": {"commit": shas[1], "tokens": v2_tokens}}
        expected["models"][name] = repo
        shutil.copytree(v2_dir, out / "models" / name)
    expected["broken"] = make_broken(out / "models" / "tiny-llama-4bit",
                                     out / "models" / "tiny-llama-4bit-sharded", out / "broken")
    shutil.rmtree(out / "staging")
    (out / "expected.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_mlx_fixtures.py OUT")
    main(Path(sys.argv[1]))
