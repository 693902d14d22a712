"""`modelsync convert DIR` of PyTorch checkpoints, judged by real PyTorch (issue 19).

The fixtures are written at test time by real torch.save (Debian's python3-torch under
/usr/bin/python3: tools/torch_fixtures/make_torch_fixtures.py), with tied weights, views at
non-zero storage offsets into one shared storage, a transposed view, float32/float16/bfloat16,
integer and bool buffers, a nested dict, and a sharded index. Every tensor modelsync writes
must be, byte for byte, what torch.load gives for it (made contiguous); mlx-lm must load the
converted llama model and generate; a pickle that calls os.system is refused, and nothing is
run or written.
"""
import hashlib
import json
import subprocess
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from conftest import modelsync
from make_mlx_fixtures import train_tokenizer

SOURCE = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-torch (tools/install-deps.sh)


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    out = tmp_path_factory.mktemp("torch")
    p = subprocess.run([SYSTEM_PYTHON, str(SOURCE / "tools/torch_fixtures/make_torch_fixtures.py"), str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, ("the fixtures need real PyTorch: Debian's python3-torch "
                               f"(bash tools/install-deps.sh)\n{p.stdout}\n{p.stderr}")
    tok = out / "tokenizer"
    tok.mkdir()
    assert train_tokenizer(tok) == 384  # the fixture's vocab_size
    for d in ("tiny", "sharded"):
        for f in tok.iterdir():
            (out / d / f.name).write_bytes(f.read_bytes())
    return out


def convert(src, root, model_id, *extra, check=True):
    return modelsync("convert", str(src), "--id", model_id, *extra, root=root, check=check, timeout=300)


def read_safetensors(model_dir: Path):
    """name -> (dtype, shape, raw bytes), over every shard."""
    out = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        data = f.read_bytes()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        for name, t in header.items():
            if name == "__metadata__":
                continue
            a, b = t["data_offsets"]
            assert name not in out, f"{name} in two shards"
            out[name] = (t["dtype"], t["shape"], data[8 + n + a:8 + n + b])
    return out


def expected(fixtures, name):
    meta = json.loads((fixtures / "expected" / f"{name}.json").read_text())
    raw = np.load(fixtures / "expected" / f"{name}.npz")
    return {k: (m["dtype"], m["shape"], raw[k].tobytes()) for k, m in meta.items()}


def nothing_written(root):
    return not (root / "models").exists() and not (root / ".modelsync/blobs/convert.tmp").exists()


def test_every_tensor_is_what_torch_load_gives(tmp_path, fixtures):
    root = tmp_path / "root"
    p, lines = convert(fixtures / "tiny", root, "tiny-mlx", "--json")
    conv = next(x for x in lines if x.get("event") == "converted")
    assert conv["converter"] == "modelsync-torch-mlx/1"
    assert conv["source"]["sha256"] == hashlib.sha256((fixtures / "tiny/pytorch_model.bin").read_bytes()).hexdigest()
    assert conv["lossless"] == len(conv["converted"]) == 21
    model = root / "models/local/tiny-mlx"
    got = read_safetensors(model)
    want = expected(fixtures, "tiny")
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == want[k], k
    # Tied weights are written under both names; the views are what torch.load makes of them.
    assert got["lm_head.weight"][2] == got["model.embed_tokens.weight"][2]
    assert got["model.layers.1.self_attn.o_proj.weight"][0] == "BF16"
    # config.json as it was; the tokenizer and generation config copied; never the code.
    assert (model / "config.json").read_bytes() == (fixtures / "tiny/config.json").read_bytes()
    assert (model / "generation_config.json").is_file() and (model / "tokenizer.json").is_file()
    assert not (model / "modeling_evil.py").exists()
    assert (root / "tiny-mlx").is_file()
    # mlx-lm loads it (strict: every parameter present, no stray one) and generates.
    from mlx_lm import generate, load
    m, tok = load(str(model))
    text = generate(m, tok, prompt="hello world", max_tokens=5, verbose=False)
    assert isinstance(text, str)
    # And the loaded parameters are the bytes torch.load gave (bf16 compared as bits).
    flat = dict(__import__("mlx.utils", fromlist=["tree_flatten"]).tree_flatten(m.parameters()))
    w = flat["model.layers.1.mlp.up_proj.weight"]
    assert w.dtype == mx.bfloat16
    assert np.array(w.view(mx.uint16)).tobytes() == want["model.layers.1.mlp.up_proj.weight"][2]


def test_sharded_checkpoint_and_the_log_records_every_input(tmp_path, fixtures):
    root = tmp_path / "root"
    src = fixtures / "sharded"
    convert(src, root, "sharded-mlx")
    got = read_safetensors(root / "models/local/sharded-mlx")
    want = expected(fixtures, "sharded")
    assert got.keys() == want.keys() and all(got[k] == want[k] for k in want)
    # The same tensors as the single file: sharding is the checkpoint's business, not the model's.
    assert got == read_safetensors_of_tiny(tmp_path, fixtures)
    p, lines = modelsync("log", "--json", root=root)
    rr = next(x["event"] for x in lines if x["kind"] == "RevisionResolved")
    d = rr["derived_from"]
    assert d["converter"] == "modelsync-torch-mlx/1"
    index = src / "pytorch_model.bin.index.json"
    assert d["source_sha256"] == hashlib.sha256(index.read_bytes()).hexdigest()
    inputs = {i["path"]: i for i in d["inputs"]}
    for name in ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin",
                 "config.json", "tokenizer.json"):
        assert inputs[name]["sha256"] == hashlib.sha256((src / name).read_bytes()).hexdigest(), name
        assert int(inputs[name]["size"]) == (src / name).stat().st_size
    # Naming the index (or a .bin) instead of the directory gives the same model.
    root2 = tmp_path / "root2"
    convert(index, root2, "sharded-mlx")
    assert read_safetensors(root2 / "models/local/sharded-mlx") == got


def read_safetensors_of_tiny(tmp_path, fixtures):
    root = tmp_path / "tiny-root"
    convert(fixtures / "tiny", root, "t")
    return read_safetensors(root / "models/local/t")


def test_integer_and_bool_buffers_nested_dicts_and_scalars_are_read(tmp_path, fixtures):
    # Not a model (no tokenizer): inspect lists what the converter would read.
    p, lines = modelsync("inspect", str(fixtures / "buffers/pytorch_model.bin"), "--json")
    got = {t["name"]: t for t in lines[0]["tensors"]}
    want = json.loads((fixtures / "expected/buffers.json").read_text())
    assert set(got) == set(want)
    for k, m in want.items():
        assert got[k]["dtype"] == m["dtype"] and got[k]["shape"] == m["shape"], k
    assert got["nested.wide"]["contiguous"] is False and got["nested.wide"]["storage_offset"] == 1
    assert got["step"]["shape"] == []
    f = tmp_path / "inspect.json"
    f.write_text(p.stdout)
    c = subprocess.run(["python3", str(SOURCE / "tools/check_json.py"), str(SOURCE / "docs/json"), "inspect",
                        str(f)], capture_output=True, text=True)
    assert c.returncode == 0, c.stdout + c.stderr


def test_quantize_is_mx_quantize_of_the_float16_values(tmp_path, fixtures):
    root = tmp_path / "root"
    convert(fixtures / "tiny", root, "q4", "--quantize", "4")
    model = root / "models/local/q4"
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["quantization"] == {"group_size": 64, "bits": 4, "mode": "affine"}
    got = mx.load(str(model / "model.safetensors"))
    want = expected(fixtures, "tiny")
    name = "model.layers.1.mlp.up_proj"  # bfloat16, 128 x 64
    dt, shape, raw = want[name + ".weight"]
    src = mx.array(np.frombuffer(raw, dtype=np.uint16).reshape(shape)).view(mx.bfloat16)
    w, s, b = mx.quantize(src.astype(mx.float16), group_size=64, bits=4)
    assert mx.array_equal(got[name + ".weight"], w)
    assert mx.array_equal(got[name + ".scales"], s) and mx.array_equal(got[name + ".biases"], b)
    # 1-D norms stay as they were.
    assert "model.norm.scales" not in got
    from mlx_lm import load
    load(str(model))


def test_a_pickle_that_runs_code_is_refused_and_nothing_runs(tmp_path, fixtures):
    root = tmp_path / "root"
    p, _ = convert(fixtures / "evil", root, "evil", check=False)
    assert p.returncode == 2, p.stderr
    assert "'posix.system'" in p.stderr and "refused" in p.stderr, p.stderr
    assert not (fixtures / "pwned").exists()
    assert nothing_written(root)
    # The sanity of the fixture: torch.load would have run it.
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import pickletools, zipfile, sys;"
                            "z = zipfile.ZipFile(sys.argv[1]);"
                            "n = [x for x in z.namelist() if x.endswith('data.pkl')][0];"
                            "pickletools.dis(z.read(n))", str(fixtures / "evil/pytorch_model.bin")],
                           capture_output=True, text=True)
    assert "posix system" in probe.stdout or "posix\nsystem" in probe.stdout, probe.stdout


def test_refusals_say_what_and_write_nothing(tmp_path, fixtures):
    root = tmp_path / "root"
    # torch.save's legacy (pre-1.6) format.
    p, _ = convert(fixtures / "legacy", root, "x", check=False)
    assert p.returncode == 2 and "legacy format" in p.stderr, p.stderr
    assert nothing_written(root)
    # A checkpoint cut short: the tensor data runs past the end.
    cut = tmp_path / "cut"
    cut.mkdir()
    for f in (fixtures / "tiny").iterdir():
        (cut / f.name).write_bytes(f.read_bytes())
    whole = (fixtures / "tiny/pytorch_model.bin").read_bytes()
    (cut / "pytorch_model.bin").write_bytes(whole[: len(whole) // 2])
    p, _ = convert(cut, root, "x", check=False)
    assert p.returncode == 2 and "pytorch_model.bin" in p.stderr, p.stderr
    assert nothing_written(root)
    # An index naming a shard that is not there.
    part = tmp_path / "part"
    part.mkdir()
    for f in (fixtures / "sharded").iterdir():
        if not f.name.startswith("pytorch_model-00002"):
            (part / f.name).write_bytes(f.read_bytes())
    p, _ = convert(part, root, "x", check=False)
    assert p.returncode == 2 and "pytorch_model-00002-of-00002.bin" in p.stderr, p.stderr
    assert nothing_written(root)
    # No config.json.
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "pytorch_model.bin").write_bytes(whole)
    p, lines = convert(bare, root, "x", "--json", check=False)
    assert p.returncode == 2 and "config.json" in lines[-1]["message"], p.stdout
    assert nothing_written(root)


def test_pull_convert_of_a_pytorch_repo(tmp_path, fixtures):
    """A PyTorch-only repo on the hub: pull --convert fetches its .bin shards, configuration
    and tokenizer (not its README, code or ONNX export) and converts them; a repo with
    .safetensors weights is left to MLX as it is."""
    from hub_emulator import Emulator
    from make_mlx_fixtures import write_repo
    d = tmp_path / "hub"
    files = {f.name: f.read_bytes() for f in (fixtures / "sharded").iterdir()}
    files.update({"README.md": b"# tiny\n", "modeling_tiny.py": b"raise SystemExit\n",
                  "onnx/model.onnx": b"\0" * 64})
    write_repo(d / "repos", "acme/tiny-torch", [("init", files)], {"main": 0})
    both = dict(files, **{"model.safetensors": b"x" * 16})
    write_repo(d / "repos", "acme/both", [("init", both)], {"main": 0})
    emu = Emulator(d / "repos", d)
    try:
        root = tmp_path / "root"
        p, lines = modelsync("pull", "acme/tiny-torch", "--convert", "--json", root=root, endpoint=emu.url)
        fetched = {e["path"].split("/resolve/")[1].split("/", 1)[1] for e in emu.log() if "/resolve/" in e["path"]}
        assert fetched == {n for n in files if n.endswith((".bin", ".json"))}, fetched
        conv = next(x for x in lines if x.get("event") == "converted")
        commit = next(x for x in lines if x.get("event") == "resolved")["commit"]
        assert conv["repo"] == "acme/tiny-torch-mlx" and conv["converter"] == "modelsync-torch-mlx/1"
        assert conv["source"]["path"] == f"{emu.url}/acme/tiny-torch@{commit}"
        assert (root / "tiny-torch-mlx").is_file() and not (root / "tiny-torch").exists()
        # The source is recorded as fields (rebuild finds it without parsing the label).
        _, log = modelsync("log", "--json", root=root)
        rr = [e["event"] for e in log if e["kind"] == "RevisionResolved"
              and e["event"]["repo"] == "acme/tiny-torch-mlx"][-1]
        d = rr["derived_from"]
        assert (d["source_repo"], d["source_commit"], d["source_file"]) == ("acme/tiny-torch", commit, "")
        pi, ins = modelsync("inspect", "tiny-torch-mlx", "--json", root=root)
        assert ins[0]["derived_from"]["source_repo"] == {"repo": "acme/tiny-torch", "commit": commit,
                                                         "file": ""}
        (tmp_path / "inspect.json").write_text(pi.stdout)
        c = subprocess.run(["python3", str(SOURCE / "tools/check_json.py"), str(SOURCE / "docs/json"),
                            "inspect", str(tmp_path / "inspect.json")], capture_output=True, text=True)
        assert c.returncode == 0, c.stdout + c.stderr
        got = read_safetensors(root / "models/acme/tiny-torch-mlx")
        want = expected(fixtures, "sharded")
        assert got.keys() == want.keys() and all(got[k] == want[k] for k in want)
        # Again: nothing fetched, nothing converted (made from this commit already).
        before = max(e["seq"] for e in emu.log())
        p, lines = modelsync("pull", "acme/tiny-torch", "--convert", "--json", root=root, endpoint=emu.url)
        assert not any("/resolve/" in e["path"] for e in emu.log(before))
        again = next(x for x in lines if x.get("event") == "converted")
        assert again["up_to_date"] is True and again["converted"] == [] and again["commit"] == conv["commit"]
        p, _ = modelsync("pull", "acme/both", "--convert", root=root, endpoint=emu.url, check=False)
        assert p.returncode == 2 and "without --convert" in p.stderr, p.stderr
        # Outputs lost: rebuild converts again from the pulled source repo, offline.
        drop_outputs(root, "acme/tiny-torch-mlx")
        before = max(e["seq"] for e in emu.log())
        p, lines = modelsync("rebuild", "--json", root=root, env={"HF_HUB_OFFLINE": "1"})
        r = next(x for x in lines if x.get("repo") == "acme/tiny-torch-mlx")
        assert r["reconverted"] and (root / "tiny-torch-mlx").is_file(), r
        assert read_safetensors(root / "models/acme/tiny-torch-mlx") == got
        assert max(e["seq"] for e in emu.log()) == before
    finally:
        emu.stop()


def drop_outputs(root, repo):
    """The converted model's files and their blobs gone (as if collected or lost)."""
    model = root / "models" / repo
    ids = [hashlib.sha256(f.read_bytes()).hexdigest() for f in model.iterdir()]
    for f in model.iterdir():
        f.unlink()
    for i in ids:
        (root / ".modelsync/blobs" / i).unlink(missing_ok=True)


def test_rebuild_converts_again_from_the_recorded_source(tmp_path, fixtures):
    src = tmp_path / "src"
    src.mkdir()
    for f in (fixtures / "tiny").iterdir():
        (src / f.name).write_bytes(f.read_bytes())
    root = tmp_path / "root"
    convert(src, root, "tiny", "--quantize", "8")
    model = root / "models/local/tiny"
    before = {f.name: f.read_bytes() for f in model.iterdir()}
    p, lines = modelsync("inspect", "tiny", "--json", root=root)
    d = lines[0]["derived_from"]
    assert d["converter"] == "modelsync-torch-mlx/1" and d["source"] == str(src)
    assert d["source_sha256"] == hashlib.sha256((src / "pytorch_model.bin").read_bytes()).hexdigest()
    drop_outputs(root, "local/tiny")
    p, lines = modelsync("rebuild", "--json", root=root)
    r = next(x for x in lines if x.get("repo") == "local/tiny")
    assert r["reconverted"] and r["marker_written"] and r["missing"], r
    # The same bytes (the --quantize 8 of the first conversion included), verified, marked.
    assert {f.name: f.read_bytes() for f in model.iterdir()} == before
    assert (root / "tiny").is_file()
    modelsync("verify", "local/tiny", root=root)
    # A source that changed since: not converted again, and said so (exit 3).
    drop_outputs(root, "local/tiny")
    (src / "pytorch_model.bin").write_bytes((fixtures / "sharded/pytorch_model-00001-of-00002.bin").read_bytes())
    p, lines = modelsync("rebuild", "--json", root=root, check=False)
    r = next(x for x in lines if x.get("repo") == "local/tiny")
    assert p.returncode == 3 and not r["reconverted"] and "sha256" in r["error"], r
    assert not (root / "tiny").exists() and not (root / ".modelsync/blobs/convert.tmp").exists()


def two_commit_torch_hub(tmp_path, fixtures):
    """The emulator serving acme/t, a PyTorch repo (the tiny fixture) at two commits: v2 changes
    config.json's rms_norm_eps from 1e-5 to 1e-6; main at v1. Returns (emulator, [sha1, sha2])."""
    from hub_emulator import Emulator
    from make_mlx_fixtures import write_repo
    d = tmp_path / "hub"
    v1 = {f.name: f.read_bytes() for f in (fixtures / "tiny").iterdir() if f.name != "modeling_evil.py"}
    cfg = json.loads(v1["config.json"])
    cfg["rms_norm_eps"] = 1e-6
    v2 = dict(v1, **{"config.json": json.dumps(cfg).encode()})
    shas = write_repo(d / "repos", "acme/t", [("v1", v1), ("v2", v2)], {"main": 0})
    return Emulator(d / "repos", d), shas


def test_a_tracked_repo_is_converted_again_when_its_source_changes(tmp_path, fixtures):
    """track --convert: sync pulls and converts; an unchanged repo is not converted again; a
    new commit of the source is."""
    emu, shas = two_commit_torch_hub(tmp_path, fixtures)
    try:
        root = tmp_path / "root"
        p, lines = modelsync("track", "acme/t", "--convert", "--id", "t-mlx", "--json", root=root, endpoint=emu.url)
        assert lines[0]["convert"] is True
        p, lines = modelsync("sync", "--json", root=root)
        assert lines[0]["ok"] and lines[0]["converted"] is True, lines
        assert (root / "t-mlx").is_file() and not (root / "t").exists()
        model = root / "models/acme/t-mlx"
        assert json.loads((model / "config.json").read_text())["rms_norm_eps"] == 1e-5
        # Offline: the source is chosen from the listing in the log; nothing to convert again.
        log_before = len(emu.log())
        p, lines = modelsync("sync", "--json", root=root, env={"HF_HUB_OFFLINE": "1"}, check=False)
        assert p.returncode == 7, p.stderr  # complete, but not checked against the hub
        assert lines[0]["ok"] and not lines[0]["checked"] and lines[0]["converted"] is False, lines
        assert len(emu.log()) == log_before
        p, lines = modelsync("sync", "--json", root=root)
        assert lines[0]["ok"] and lines[0]["converted"] is False and lines[0]["up_to_date"], lines
        emu.control("refs", {"repo": "acme/t", "ref": "main", "commit": shas[1]})
        p, lines = modelsync("sync", "--json", root=root)
        assert lines[0]["ok"] and lines[0]["converted"] is True and lines[0]["commit"] == shas[1], lines
        assert json.loads((model / "config.json").read_text())["rms_norm_eps"] == 1e-6
        p, lines = modelsync("inspect", "t-mlx", "--json", root=root)
        assert lines[0]["derived_from"]["source"] == f"{emu.url}/acme/t@{shas[1]}"
        assert read_safetensors(model) == read_safetensors_of_tiny(tmp_path, fixtures)
    finally:
        emu.stop()


def test_the_daemon_keeps_a_converted_repo_current(tmp_path, fixtures):
    """track --convert under the daemon: its first pass pulls and converts, status shows the
    repo current, a new commit of the source is converted again on the next pass (sync --now),
    and SIGTERM stops it cleanly."""
    import signal
    import time
    from conftest import MODELSYNC
    emu, shas = two_commit_torch_hub(tmp_path, fixtures)
    root = tmp_path / "root"
    daemon = None
    try:
        modelsync("track", "acme/t", "--convert", "--id", "t-mlx", "--every", "1h", root=root,
                  endpoint=emu.url)
        err = open(tmp_path / "daemon.err", "w")
        daemon = subprocess.Popen([MODELSYNC, "daemon", "--root", str(root)], stdout=err, stderr=err)
        model = root / "models/acme/t-mlx"
        deadline = time.time() + 60
        while not (root / "t-mlx").is_file() and time.time() < deadline:
            time.sleep(0.05)
        assert (root / "t-mlx").is_file(), (tmp_path / "daemon.err").read_text()
        assert not (root / "t").exists()  # the source repo has no marker: MLX cannot load it
        assert json.loads((model / "config.json").read_text())["rms_norm_eps"] == 1e-5
        p, lines = modelsync("status", "--json", root=root)
        st = json.loads(p.stdout)["daemon"]
        entry = next(r for r in st["repos"] if r["repo"] == "acme/t")
        assert entry["state"] == "current" and entry["commit"] == shas[0], st
        emu.control("refs", {"repo": "acme/t", "ref": "main", "commit": shas[1]})
        p, lines = modelsync("sync", "--now", "--json", root=root)
        assert lines[0]["ok"] and lines[0]["via"] == "daemon", lines
        assert json.loads((model / "config.json").read_text())["rms_norm_eps"] == 1e-6
        p, lines = modelsync("inspect", "t-mlx", "--json", root=root)
        assert lines[0]["derived_from"]["source_repo"]["commit"] == shas[1]
        modelsync("verify", root=root)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
        daemon = None
        log = (tmp_path / "daemon.err").read_text()
        assert "converted into an MLX model again" in log, log
    finally:
        if daemon is not None:
            daemon.kill()
            daemon.wait()
        emu.stop()
