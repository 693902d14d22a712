"""Writes the seed corpus of fuzz_gguf (tools/fuzz/corpus/gguf/) with llama.cpp's own writer
(the `gguf` package of tools/requirements.txt): small files that exercise every metadata value
type, arrays, several tensor types, a custom alignment and big-endian byte order.
Usage: .venv/bin/python tools/fuzz/make_gguf_seeds.py tools/fuzz/corpus/gguf"""
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFEndian, GGUFWriter
from gguf.quants import quantize


def seed(path, *, alignment=None, endian=GGUFEndian.LITTLE, tensors=True):
    w = GGUFWriter(str(path), "llama", endianess=endian)
    if alignment:
        w.add_custom_alignment(alignment)
    w.add_name("seed")
    w.add_uint8("s.u8", 1)
    w.add_int16("s.i16", -2)
    w.add_uint32("s.u32", 3)
    w.add_float32("s.f32", 0.5)
    w.add_bool("s.bool", True)
    w.add_uint64("s.u64", 4)
    w.add_int64("s.i64", -5)
    w.add_float64("s.f64", 0.25)
    w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "b"])
    w.add_array("s.ints", [1, 2])
    if tensors:
        dense = np.arange(64, dtype=np.float32).reshape(2, 32) / 64
        w.add_tensor("a.f32", dense)
        w.add_tensor("b.f16", dense.astype(np.float16))
        w.add_tensor("c.q4_0", quantize(dense, Q.Q4_0), raw_dtype=Q.Q4_0)
        w.add_tensor("d.q8_0", quantize(dense, Q.Q8_0), raw_dtype=Q.Q8_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
seed(out / "valid.gguf")
seed(out / "aligned64.gguf", alignment=64)
seed(out / "header_only.gguf", tensors=False)
seed(out / "big_endian.gguf", endian=GGUFEndian.BIG)
