"""huggingface_hub is the judge of the cache modelsync writes and reads: after `export` its own
readers (snapshot_download, scan_cache_dir, `hf cache verify`, mlx_lm.load by repo id offline)
find the model byte for byte; after `hf download` from the emulator, `import` then `pull`
fetches nothing from the CDN."""
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from huggingface_hub import scan_cache_dir, snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError

from conftest import MODELSYNC, done_event, modelsync
from test_mlx import generate

LLAMA = "mlx-test/tiny-llama-4bit"
QWEN = "mlx-test/tiny-qwen2-4bit"
SHARDED = "mlx-test/tiny-llama-4bit-sharded"
HF = str(Path(os.environ.get("VIRTUAL_ENV", Path(os.sys.executable).parent.parent)) / "bin" / "hf")


def hf_cli(*args, cache, endpoint=None, check=True):
    env = {**os.environ, "HF_HUB_CACHE": str(cache)}
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    p = subprocess.run([HF, *args], capture_output=True, text=True, env=env, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"hf {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def generate_by_repo_id(repo, expected, cache, endpoint):
    """`HF_HUB_OFFLINE=1 mlx_lm.load("org/name")` in a fresh interpreter (huggingface_hub reads
    its environment once, at import): the greedy tokens."""
    code = ("import json, sys, mlx.core as mx\n"
            "from mlx_lm import load\n"
            "from mlx_lm.generate import generate_step\n"
            "e = json.loads(sys.argv[2])\n"
            "model, tok = load(sys.argv[1])\n"
            "ids = tok.encode(e['prompt'], add_special_tokens=False)\n"
            "print(json.dumps([int(t) for t, _ in generate_step(mx.array(ids), model, "
            "max_tokens=e['max_tokens'])]))\n")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_ENDPOINT": endpoint}
    p = subprocess.run([os.sys.executable, "-c", code, repo, json.dumps(expected)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def same_bytes(a: Path, b: Path) -> bool:
    return a.read_bytes() == b.read_bytes()


def test_export_is_read_by_huggingface_hub_byte_for_byte(mlx_fixtures, hub, tmp_path):
    _, expected = mlx_fixtures
    cache = tmp_path / "hf"
    _, lines = modelsync("pull", LLAMA, "--json", "--hf-cache", str(cache), root=tmp_path / "root",
                         endpoint=hub.url)
    done = done_event(lines)
    exported = next(x for x in lines if x.get("event") == "hf_cache")
    assert exported["commit"] == done["commit"] and exported["ref"] == "main"
    assert exported["linked"] == exported["files"] == 5 and exported["copied"] == 0

    snap = Path(snapshot_download(LLAMA, local_files_only=True, cache_dir=cache))
    assert snap.name == done["commit"]
    model_dir = Path(done["model_dir"])
    ours = sorted(p.name for p in model_dir.iterdir())
    assert sorted(p.name for p in snap.iterdir()) == ours
    for name in ours:
        assert same_bytes(snap / name, model_dir / name), name
        # One copy of the bytes: the cache's blob is modelsync's blob (a hard link).
        assert (snap / name).resolve().stat().st_ino == (model_dir / name).stat().st_ino

    info = scan_cache_dir(cache)
    assert not info.warnings
    (repo,) = list(info.repos)
    assert repo.repo_id == LLAMA and repo.size_on_disk == done["bytes_total"]
    (rev,) = list(repo.revisions)
    assert rev.commit_hash == done["commit"] and rev.refs == frozenset({"main"})
    assert rev.nb_files == 5

    p = hf_cli("cache", "verify", LLAMA, "--fail-on-missing-files", "--fail-on-extra-files",
               cache=cache, endpoint=hub.url)
    assert "All checksums match" in p.stdout

    # mlx-lm by repo id, offline: through the Hugging Face cache, no request at all.
    hub.reset()
    tokens = generate_by_repo_id(LLAMA, expected, cache, hub.url)
    assert tokens == expected["repos"][LLAMA]["v2"]["tokens"]
    assert hub.stats()["hub"]["requests"] == 0 and hub.stats()["cdn"]["requests"] == 0


def test_export_after_an_update_adds_the_new_snapshot_and_moves_the_ref(mlx_fixtures, hub, tmp_path):
    _, expected = mlx_fixtures
    cache, root = tmp_path / "hf", tmp_path / "root"
    modelsync("pull", LLAMA + "@v1", "--hf-cache", str(cache), root=root, endpoint=hub.url)
    # A tag is a ref too: refs/v1 as huggingface_hub writes it for revision="v1".
    v1 = expected["repos"][LLAMA]["v1"]["commit"]
    folder = cache / "models--mlx-test--tiny-llama-4bit"
    assert (folder / "refs" / "v1").read_text() == v1
    modelsync("pull", LLAMA, root=root, endpoint=hub.url)
    _, lines = modelsync("export", LLAMA, "--hf-cache", str(cache), "--json", root=root)
    v2 = expected["repos"][LLAMA]["v2"]["commit"]
    assert lines[0]["commit"] == v2 and lines[0]["snapshot_created"]
    assert lines[0]["kept"] == 4 and lines[0]["linked"] == 1  # only the changed weights are new
    assert (folder / "refs" / "main").read_text() == v2
    revs = {r.commit_hash for r in next(iter(scan_cache_dir(cache).repos)).revisions}
    assert revs == {v1, v2}
    # Exporting again changes nothing.
    _, again = modelsync("export", LLAMA, "--hf-cache", str(cache), "--json", root=root)
    assert again[0]["kept"] == 5 and not again[0]["snapshot_created"]


def test_a_reader_never_sees_half_a_snapshot(hub, tmp_path):
    cache, root = tmp_path / "hf", tmp_path / "root"
    modelsync("pull", SHARDED, root=root, endpoint=hub.url)
    want = {p.name for p in (root / "models" / SHARDED).iterdir()}
    snapshots = cache / "models--mlx-test--tiny-llama-4bit-sharded" / "snapshots"
    seen, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                for snap in (snapshots.iterdir() if snapshots.is_dir() else []):
                    if not snap.name.startswith("."):
                        seen.append({p.name for p in snap.iterdir()})
            except FileNotFoundError:  # moved away by the test between two calls
                pass

    t = threading.Thread(target=reader)
    t.start()
    try:
        for n in range(5):  # export, move away, export again: each time it appears whole
            modelsync("export", SHARDED, "--hf-cache", str(cache), root=root)
            snapshots.rename(tmp_path / f"gone-{n}")
    finally:
        stop.set()
        t.join()
    assert seen and all(s == want for s in seen), [s for s in seen if s != want][:3]


def test_export_across_file_systems_copies_and_says_so(hub, tmp_path):
    root = tmp_path / "root"
    modelsync("pull", QWEN, root=root, endpoint=hub.url)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size=8m tmpfs '{mnt}' && "
              f"'{MODELSYNC}' export {QWEN} --json --root '{root}' --hf-cache '{mnt}/hf' && "
              f"cmp '{mnt}/hf/models--mlx-test--tiny-qwen2-4bit/snapshots/'*/model.safetensors "
              f"'{root}/models/{QWEN}/model.safetensors'")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert '"copied":5' in r.stdout and '"linked":0' in r.stdout


def test_export_refuses_what_it_cannot_export(hub, tmp_path):
    p, _ = modelsync("export", LLAMA, "--hf-cache", str(tmp_path / "hf"), root=tmp_path / "r",
                     check=False)
    assert p.returncode != 0 and "no modelsync root at" in p.stderr
    modelsync("pull", QWEN, "--include", "config.json", root=tmp_path / "r", endpoint=hub.url)
    p, _ = modelsync("export", LLAMA, "--hf-cache", str(tmp_path / "hf"), root=tmp_path / "r",
                     check=False)
    assert p.returncode != 0 and "pull it first" in p.stderr
    p, _ = modelsync("export", "not a repo", root=tmp_path / "r", check=False)
    assert p.returncode == 2
    assert not (tmp_path / "hf").exists()


def test_hf_download_then_import_then_pull_fetches_nothing_from_the_cdn(mlx_fixtures, hub, tmp_path):
    _, expected = mlx_fixtures
    cache, root = tmp_path / "hf", tmp_path / "root"
    hf_cli("download", QWEN, cache=cache, endpoint=hub.url)
    _, lines = modelsync("import", QWEN, "--hf-cache", str(cache), "--json", root=root)
    assert lines[0]["repo"] == QWEN and lines[0]["adopted"] == 5 and not lines[0]["damaged"]
    hub.reset()
    _, lines = modelsync("pull", QWEN, "--json", root=root, endpoint=hub.url)
    done = done_event(lines)
    assert done["bytes_fetched"] == 0 and done["marker"]["written"]
    assert hub.stats()["cdn"]["requests"] == 0
    assert generate(Path(done["model_dir"]), expected) == expected["repos"][QWEN]["v2"]["tokens"]
    # Importing again adopts nothing new. (`--hf-cache REPO`: DIR is optional, the default
    # cache is $HF_HUB_CACHE, and a repo id there is the repo.)
    _, lines = modelsync("import", "--hf-cache", QWEN, "--json", root=root,
                         env={"HF_HUB_CACHE": str(cache)})
    assert len(lines) == 1 and lines[0]["repo"] == QWEN
    assert lines[0]["adopted"] == 0 and lines[0]["already"] == 5


def test_import_refuses_a_damaged_blob_and_adopts_the_rest(hub, tmp_path):
    cache, root = tmp_path / "hf", tmp_path / "root"
    hf_cli("download", QWEN, cache=cache, endpoint=hub.url)
    blobs = cache / "models--mlx-test--tiny-qwen2-4bit" / "blobs"
    weights = max(blobs.iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(weights.read_bytes())
    data[1000] ^= 0xFF
    weights.write_bytes(bytes(data))
    p, lines = modelsync("import", "--hf-cache", str(cache), "--json", root=root, check=False)
    assert p.returncode == 3
    assert lines[0]["adopted"] == 4 and len(lines[0]["damaged"]) == 1
    assert "model.safetensors" in lines[0]["damaged"][0] and weights.name in lines[0]["damaged"][0]
    hub.reset()
    _, lines = modelsync("pull", QWEN, "--json", root=root, endpoint=hub.url)
    assert done_event(lines)["bytes_fetched"] == len(data)  # exactly the damaged file


def test_import_reads_the_shared_blob_store_of_huggingface_hub_1x(hub, tmp_path):
    """<cache>/blobs/<2 hex>/<hash> with the repo's blobs/<etag> a relative symlink to it
    (huggingface_hub utils/_shared_blobs.py), built here from an ordinary download."""
    cache, root = tmp_path / "hf", tmp_path / "root"
    hf_cli("download", LLAMA, cache=cache, endpoint=hub.url)
    blobs = cache / "models--mlx-test--tiny-llama-4bit" / "blobs"
    weights = max(blobs.iterdir(), key=lambda p: p.stat().st_size)
    store = cache / "blobs" / weights.name[:2]
    store.mkdir(parents=True)
    (cache / "blobs" / ".huggingface-shared-blobs").write_text("1")
    weights.rename(store / weights.name)
    weights.symlink_to(Path("..", "..", "blobs", weights.name[:2], weights.name))
    # huggingface_hub itself still reads the model through the two links
    snap = Path(snapshot_download(LLAMA, local_files_only=True, cache_dir=cache))
    assert (snap / "model.safetensors").read_bytes() == (store / weights.name).read_bytes()
    _, lines = modelsync("import", LLAMA, "--hf-cache", str(cache), "--json", root=root)
    assert lines[0]["adopted"] == 5 and not lines[0]["damaged"]
    hub.reset()
    _, lines = modelsync("pull", LLAMA, "--json", root=root, endpoint=hub.url)
    assert done_event(lines)["bytes_fetched"] == 0 and hub.stats()["cdn"]["requests"] == 0


def test_import_never_follows_a_link_out_of_the_cache(hub, tmp_path):
    cache, root = tmp_path / "hf", tmp_path / "root"
    hf_cli("download", QWEN, cache=cache, endpoint=hub.url)
    snap = next((cache / "models--mlx-test--tiny-qwen2-4bit" / "snapshots").iterdir())
    secret = tmp_path / "secret.txt"
    secret.write_text("not the cache's")
    (snap / "config.json").unlink()
    (snap / "config.json").symlink_to(Path("..", "..", "..", "..", "secret.txt"))
    (snap / "extra.json").symlink_to(secret)
    p, lines = modelsync("import", "--hf-cache", str(cache), "--json", root=root, check=False)
    assert p.returncode == 3
    assert sorted(d.split(":")[0] for d in lines[0]["damaged"]) == [
        snap.name + "/config.json", snap.name + "/extra.json"]
    assert all("outside the cache" in d for d in lines[0]["damaged"])


def test_import_errors_are_said(tmp_path):
    p, _ = modelsync("import", "--hf-cache", str(tmp_path / "none"), root=tmp_path / "r", check=False)
    assert p.returncode == 2 and "no Hugging Face cache at" in p.stderr
    (tmp_path / "hf").mkdir()
    p, _ = modelsync("import", "org/missing", "--hf-cache", str(tmp_path / "hf"),
                     root=tmp_path / "r", check=False)
    assert p.returncode == 2 and "org/missing is not in the Hugging Face cache" in p.stderr


def test_the_default_cache_is_huggingface_hubs(hub, tmp_path, monkeypatch):
    root = tmp_path / "root"
    modelsync("pull", QWEN, root=root, endpoint=hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hfhome"))
    modelsync("export", QWEN, root=root)
    assert len(scan_cache_dir(tmp_path / "hfhome" / "hub").repos) == 1
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hubcache"))
    modelsync("export", QWEN, root=root)
    assert len(scan_cache_dir(tmp_path / "hubcache").repos) == 1
    with pytest.raises(LocalEntryNotFoundError):
        snapshot_download(LLAMA, local_files_only=True, cache_dir=tmp_path / "hubcache")
