#!/usr/bin/env python3
"""GGUF -> MLX conversion benchmark (issue 19): wall time, output rate and peak RSS of
`modelsync convert` on SmolLM2-135M-Instruct.Q4_1.gguf (.venv/fixtures) and on a synthetic
llama GGUF of --size bytes (Q4_0/Q8_0/F16 mix), against two baselines measured in the same
run on the same file:
  - copy: `cp` of the source plus fsync (the disk's floor for a streaming rewrite);
  - mlx:  mlx's own GGUF path, `mx.load(gguf)` then `mx.save_safetensors` (what an MLX user
          would script; no tokenizer, no config, no q/k un-permutation).
Each measured --rounds times, alternating; the median is reported. Prints a Markdown section
(appended to BENCHMARKS.md by `--out`).

usage: .venv/bin/python tools/bench/convert.py --modelsync build-release/cli/modelsync
           [--size 1GiB] [--rounds 3] [--work DIR] [--out BENCHMARKS.md]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SRC = Path(__file__).resolve().parents[2]
SMOLLM2 = SRC / ".venv/fixtures/SmolLM2-135M-Instruct.Q4_1.gguf"


def size_arg(s):
    units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
    for u, m in units.items():
        if s.endswith(u):
            return int(float(s[: -len(u)]) * m)
    return int(s)


def synthetic_gguf(path, target):
    """A llama GGUF of about `target` bytes: Q8_0 attention, Q4_0 MLP, F16 embeddings."""
    from gguf import GGMLQuantizationType as Q
    from gguf import GGUFWriter
    for d in ("tests/ecosystem", "tests/support", "tools/mlx_fixtures"):
        sys.path.insert(0, str(SRC / d))
    from test_convert import byte_level_vocab
    hidden, ffn, heads, kv = 2048, 5632, 32, 4
    tokens, types, merges = byte_level_vocab()
    vocab = len(tokens)
    per_layer = (hidden * hidden * 2 + hidden * (hidden // heads) * kv * 2) // 32 * 34 + \
        3 * hidden * ffn // 32 * 18
    layers = max(1, (target - 2 * vocab * hidden * 2) // per_layer)
    rng = np.random.default_rng(0)

    def blocks(rows, cols, qt):
        n = rows * cols // 32
        d = (rng.random(n, dtype=np.float32) * 0.01 + 0.001).astype(np.float16).view(np.uint8).reshape(n, 2)
        q = rng.integers(0, 256, size=(n, 32 if qt == Q.Q8_0 else 16), dtype=np.uint8)
        return np.concatenate([d, q], axis=1).reshape(rows, -1)

    w = GGUFWriter(str(path), "llama")
    w.add_block_count(layers)
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ffn)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_tensor("token_embd.weight", rng.standard_normal((vocab, hidden)).astype(np.float16))
    w.add_tensor("output.weight", rng.standard_normal((vocab, hidden)).astype(np.float16))
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    hd = hidden // heads
    for i in range(layers):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(hidden, np.float32))
        for n, rows in [("attn_q", hidden), ("attn_k", hd * kv), ("attn_v", hd * kv), ("attn_output", hidden)]:
            w.add_tensor(p + n + ".weight", blocks(rows, hidden, Q.Q8_0), raw_dtype=Q.Q8_0)
        w.add_tensor(p + "ffn_gate.weight", blocks(ffn, hidden, Q.Q4_0), raw_dtype=Q.Q4_0)
        w.add_tensor(p + "ffn_up.weight", blocks(ffn, hidden, Q.Q4_0), raw_dtype=Q.Q4_0)
        w.add_tensor(p + "ffn_down.weight", blocks(hidden, ffn, Q.Q4_0), raw_dtype=Q.Q4_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return layers


def measure(cmd, env=None):
    """(seconds, peak RSS in bytes) of a command run under GNU time."""
    with tempfile.NamedTemporaryFile() as t:
        start = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", t.name, *cmd], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        took = time.perf_counter() - start
        return took, int(Path(t.name).read_text().split()[-1]) * 1024


MLX_SCRIPT = """import sys, mlx.core as mx
w = mx.load(sys.argv[1])
mx.save_safetensors(sys.argv[2] + "/model.safetensors", w)
"""


def run_case(name, gguf, ms, work, rounds):
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    results = {"modelsync": [], "copy": [], "mlx": []}
    out_bytes = 0
    for r in range(rounds):
        for tool in ("modelsync", "copy", "mlx"):
            dest = work / f"{tool}-{r}"
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir()
            subprocess.run(["sync"], check=True)
            if tool == "modelsync":
                s = measure([ms, "convert", str(gguf), "--id", "bench", "--root", str(dest / "root")], env)
                out_bytes = sum(f.stat().st_size for f in (dest / "root/models/local/bench").iterdir())
            elif tool == "copy":
                s = measure(["python3", "-c", "import shutil, os, sys; shutil.copyfile(sys.argv[1], sys.argv[2]);"
                             " f = os.open(sys.argv[2], os.O_RDONLY); os.fsync(f)", str(gguf), str(dest / "copy")])
            else:
                s = measure([sys.executable, "-c", MLX_SCRIPT, str(gguf), str(dest)])
            results[tool].append(s)
            shutil.rmtree(dest)
    med = {t: (statistics.median(x[0] for x in v), max(x[1] for x in v)) for t, v in results.items()}
    return name, gguf.stat().st_size, out_bytes, med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--modelsync", required=True)
    ap.add_argument("--size", default="1GiB")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work")
    ap.add_argument("--out")
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="convert-bench-", dir=str(SRC / "build-release")
                                           if (SRC / "build-release").is_dir() else None))
    work.mkdir(parents=True, exist_ok=True)
    try:
        cases = []
        if SMOLLM2.is_file():
            cases.append(run_case("SmolLM2-135M-Instruct.Q4_1.gguf (Q4_1/Q8_0/F32)", SMOLLM2,
                                  a.modelsync, work, a.rounds))
        syn = work / "synthetic.gguf"
        layers = synthetic_gguf(syn, size_arg(a.size))
        cases.append(run_case(f"synthetic llama, {layers} layers (Q8_0/Q4_0/F16)", syn,
                              a.modelsync, work, a.rounds))
        syn.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mib = 1 << 20
    lines = ["## GGUF -> MLX conversion (issue 19)", "",
             f"`tools/bench/convert.py`, median of {a.rounds} rounds, tools alternating; "
             "`modelsync convert` into a fresh root (convert, hash the source, hash and adopt the "
             "outputs, log, lay out, marker); baselines in the same run: `copy` (copy the source "
             "+ fsync) and `mlx` (`mx.load(gguf)` + `mx.save_safetensors`).", "",
             "| source | in MiB | out MiB | modelsync s | out GB/s | peak RSS MiB | copy s | mlx s | mlx RSS MiB | modelsync ÷ copy | mlx ÷ modelsync |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, size_in, size_out, med in cases:
        ms_s, ms_rss = med["modelsync"]
        lines.append(f"| {name} | {size_in / mib:.0f} | {size_out / mib:.0f} | {ms_s:.3f} | "
                     f"{size_out / ms_s / 1e9:.2f} | {ms_rss / mib:.0f} | {med['copy'][0]:.3f} | "
                     f"{med['mlx'][0]:.3f} | {med['mlx'][1] / mib:.0f} | "
                     f"{ms_s / med['copy'][0]:.2f}x | {med['mlx'][0] / ms_s:.2f}x |")
    name, size_in, size_out, med = cases[-1]
    rate = size_out / med["modelsync"][0] / 1e9
    rss = max(c[3]["modelsync"][1] for c in cases) / mib
    lines += ["", f"Targets (issue 19), on the synthetic file: >= 1 GB/s of output: "
              f"{'met' if rate >= 1 else 'missed'} ({rate:.2f} GB/s); peak RSS <= 128 MiB at any "
              f"size: {'met' if rss <= 128 else 'missed'} ({rss:.0f} MiB)."]
    notes = Path(__file__).with_name("CONVERT_ANALYSIS.md")  # the analysis, kept by hand
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write("\n" + text)


if __name__ == "__main__":
    main()
