"""Writes the seed corpus of fuzz_gguf (tools/fuzz/corpus/gguf/) with llama.cpp's own writer
(the `gguf` package of tools/requirements.txt): small files that exercise every metadata value
type, arrays, several tensor types, a custom alignment, big-endian byte order, and the two
tokenizers the converter rebuilds.
Usage: .venv/bin/python tools/fuzz/make_gguf_seeds.py tools/fuzz/corpus/gguf"""
import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as Q
from gguf import GGUFEndian, GGUFWriter
from gguf.quants import quantize


def seed(path, *, alignment=None, endian=GGUFEndian.LITTLE, tensors=True, tokenizer=None):
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
    if tokenizer == "gpt2":  # the converter's byte-level BPE reader (engine/gguf_tokenizer.cc)
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("llama-bpe")
        w.add_token_list(["<s>", "a", "b", "ab", "Ġa", "é"])
        w.add_token_types([3, 1, 1, 1, 1, 4])
        w.add_token_merges(["a b", "Ġ a"])
        w.add_bos_token_id(0)
        w.add_add_bos_token(True)
        w.add_chat_template("{{ messages }}")
    elif tokenizer == "llama":  # and its SentencePiece one
        w.add_tokenizer_model("llama")
        w.add_token_list(["<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "▁ab"])
        w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0])
        w.add_token_types([2, 3, 3, 1, 1, 1, 1, 1, 1])
        w.add_bos_token_id(1)
    else:
        w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "a", "b"])
    w.add_array("s.ints", [1, 2])
    if tensors:
        dense = np.arange(64, dtype=np.float32).reshape(2, 32) / 64
        w.add_tensor("a.f32", dense)
        w.add_tensor("b.f16", dense.astype(np.float16))
        w.add_tensor("c.q4_0", quantize(dense, Q.Q4_0), raw_dtype=Q.Q4_0)
        w.add_tensor("d.q8_0", quantize(dense, Q.Q8_0), raw_dtype=Q.Q8_0)
        if tokenizer:  # dequantized by the converter: a K-quant block and a Q5_1 one
            w.add_tensor("e.q6_k", np.arange(210, dtype=np.uint8).reshape(1, 210), raw_dtype=Q.Q6_K)
            w.add_tensor("f.q5_1", quantize(dense, Q.Q5_1), raw_dtype=Q.Q5_1)
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
seed(out / "tokenizer_gpt2.gguf", tokenizer="gpt2")
seed(out / "tokenizer_llama.gguf", tokenizer="llama")
