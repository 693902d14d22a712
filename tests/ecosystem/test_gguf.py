"""llama.cpp's own `gguf` package judges modelsync's GGUF reader (engine/gguf.h, seen through
`modelsync inspect FILE.gguf --json`): files written by gguf.GGUFWriter, with every metadata
value type and tensors of several ggml types, read back by gguf.GGUFReader and by modelsync,
must agree on every tensor and every key; damaged files are refused with the offset and the
field, exit 2."""
import json
import struct
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFEndian, GGUFReader, GGUFWriter
from gguf.quants import quantize

from conftest import MODELSYNC

TOKENS = [f"tok{i}" for i in range(100)]


def write(path, *, alignment=None, endian=GGUFEndian.LITTLE):
    w = GGUFWriter(str(path), "llama", endianess=endian)
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_name("tiny test model")
    w.add_context_length(256)
    w.add_block_count(2)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 1.5)
    w.add_bool("t.bool", True)
    w.add_string("t.string", "héllo, wörld")
    w.add_uint64("t.u64", 2**40 + 3)
    w.add_int64("t.i64", -(2**40))
    w.add_float64("t.f64", 0.1)
    w.add_array("t.strings", ["a", "b", "c"])
    w.add_array("t.ints", [1, 2, 3])
    w.add_array("tokenizer.ggml.tokens", TOKENS)
    w.add_string("tokenizer.ggml.model", "gpt2")
    rng = np.random.default_rng(7)
    dense = rng.standard_normal((16, 64)).astype(np.float32)
    w.add_tensor("token_embd.weight", dense)
    w.add_tensor("blk.0.attn_norm.weight", rng.standard_normal(64).astype(np.float16))
    for name, qt in [("blk.0.attn_q.weight", Q.Q4_0), ("blk.0.attn_k.weight", Q.Q4_1),
                     ("blk.0.attn_v.weight", Q.Q8_0), ("blk.0.ffn_up.weight", Q.BF16)]:
        w.add_tensor(name, quantize(dense, qt), raw_dtype=qt)  # shape: from the bytes
    # A K-quant (256 values per block): bytes of the right size, as the reader only sizes them.
    kq = rng.integers(0, 256, size=(4, 144), dtype=np.uint8)
    w.add_tensor("blk.1.ffn_down.weight", kq, raw_dtype=Q.Q4_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def inspect(path, check=True):
    p = subprocess.run([MODELSYNC, "inspect", str(path), "--json"], capture_output=True, text=True,
                       timeout=60)
    if check:
        assert p.returncode == 0, p.stdout + p.stderr
    return p, (json.loads(p.stdout.splitlines()[-1]) if p.stdout.strip() else None)


def field_value(f):
    v = f.contents()
    return v


@pytest.mark.parametrize("alignment", [None, 64])
def test_modelsync_reads_what_gguf_writes_as_gguf_reads_it(tmp_path, alignment):
    path = write(tmp_path / "m.gguf", alignment=alignment)
    _, got = inspect(path)
    ref = GGUFReader(str(path))
    assert got["version"] == 3 and got["architecture"] == "llama"
    assert got["alignment"] == (alignment or 32) and got["file_size"] == path.stat().st_size
    assert got["tensor_count"] == len(ref.tensors) == 7
    for ours, theirs in zip(got["tensors"], ref.tensors):
        assert ours["name"] == theirs.name
        assert ours["type"] == Q(theirs.tensor_type).name
        assert ours["dims"] == [int(d) for d in theirs.shape]
        assert ours["offset"] == theirs.data_offset
        assert ours["bytes"] == theirs.n_bytes
    assert got["data_offset"] == min(t.data_offset for t in ref.tensors)
    meta = got["metadata"]
    assert sorted(meta) == sorted(k for k in ref.fields if not k.startswith("GGUF."))
    for key, f in ref.fields.items():
        if key.startswith("GGUF."):
            continue
        v = field_value(f)
        if isinstance(v, list):
            assert meta[key]["count"] == len(v), key
            assert meta[key]["head"] == v[:8], key
        elif isinstance(v, float):
            assert meta[key] == pytest.approx(v, rel=1e-7), key
        else:
            assert meta[key] == v, key
    assert meta["tokenizer.ggml.tokens"]["array_of"] == "string"


def test_the_text_report_says_what_the_file_holds(tmp_path):
    path = write(tmp_path / "m.gguf")
    p = subprocess.run([MODELSYNC, "inspect", str(path)], capture_output=True, text=True)
    assert p.returncode == 0
    assert "GGUF v3, llama, 7 tensors" in p.stdout
    assert "Q4_0 x1" in p.stdout and "Q4_K x1" in p.stdout and "F32 x1" in p.stdout
    assert "tokenizer: gpt2, 100 tokens" in p.stdout


def patched(tmp_path, data: bytes, at: int, new: bytes, name: str):
    out = tmp_path / name
    out.write_bytes(data[:at] + new + data[at + len(new):])
    return out


def test_damaged_files_are_refused_naming_offset_and_field(tmp_path):
    good = write(tmp_path / "m.gguf").read_bytes()
    # The first tensor's record: its name, then n_dims, dims, type, offset.
    name_at = good.index(b"token_embd.weight")
    dims_at = name_at + len(b"token_embd.weight") + 4
    type_at = dims_at + 2 * 8
    cases = {
        "truncated-metadata": (good[:60], "truncated"),
        "truncated-tensors": (good[:name_at + 5], "truncated"),
        "truncated-data": (good[:-100], "run past the end of the file"),
        "huge-tensor-count": (patched(tmp_path, good, 8, struct.pack("<Q", 2**40), "a").read_bytes(),
                              "offset 8, tensor count: 1099511627776 exceeds the cap"),
        "huge-key": (patched(tmp_path, good, 24, struct.pack("<Q", 2**40), "b").read_bytes(),
                     "offset 24, metadata key #0: string length 1099511627776 exceeds the cap"),
        "unknown-type": (patched(tmp_path, good, type_at, struct.pack("<I", 99), "c").read_bytes(),
                         "tensor #0 'token_embd.weight': unknown ggml type 99"),
        "partial-block": (patched(tmp_path, good, type_at, struct.pack("<I", int(Q.Q4_K)), "d").read_bytes(),
                          "is not a whole number of Q4_K blocks of 256"),
        "not-gguf": (b"GGML" + good[4:], "does not start with \"GGUF\""),
        "version-1": (patched(tmp_path, good, 4, struct.pack("<I", 1), "e").read_bytes(),
                      "GGUF version 1"),
    }
    for name, (data, want) in cases.items():
        path = tmp_path / f"{name}.gguf"
        path.write_bytes(data)
        p, j = inspect(path, check=False)
        assert p.returncode == 2, name
        assert want in p.stderr, (name, p.stderr)
        assert "at offset" in p.stderr, (name, p.stderr)
    # --json: one error object.
    _, j = inspect(tmp_path / "unknown-type.gguf", check=False)
    assert j["event"] == "error" and j["exit"] == 2


def test_overlapping_tensors_and_big_endian_are_refused(tmp_path):
    good = write(tmp_path / "m.gguf").read_bytes()
    ref = GGUFReader(str(tmp_path / "m.gguf"))
    # Point the second tensor's data at the first's.
    second = ref.tensors[1].name.encode()
    at = good.index(second) + len(second)
    n_dims = struct.unpack_from("<I", good, at)[0]
    offset_at = at + 4 + 8 * n_dims + 4
    bad = patched(tmp_path, good, offset_at, struct.pack("<Q", 0), "overlap.gguf")
    p, _ = inspect(bad, check=False)
    assert p.returncode == 2 and "overlaps tensor 'token_embd.weight'" in p.stderr
    be = write(tmp_path / "be.gguf", endian=GGUFEndian.BIG)
    p, _ = inspect(be, check=False)
    assert p.returncode == 2 and "big-endian" in p.stderr
