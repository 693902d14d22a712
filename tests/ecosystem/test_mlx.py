"""MLX is the judge: what modelsync pulls, mlx-lm loads on the CPU and generates from exactly as
the source model did in memory; modelsync's model checks agree with mlx-lm on good and broken
models. Fixtures: tools/mlx_fixtures/make_mlx_fixtures.py (made by mlx-lm in the test set-up)."""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import mlx.core as mx
import pytest
from mlx_lm import load
from mlx_lm.generate import generate_step

from conftest import MODELSYNC, done_event, modelsync

LLAMA = "mlx-test/tiny-llama-4bit"
SMALL = "mlx-test/small-llama-4bit"  # ~10 MB of weights: fetched to disk, not into memory


def generate(model_dir: Path, expected) -> list:
    """mlx_lm.load of a directory + greedy generation of max_tokens from the fixed prompt."""
    model, tokenizer = load(str(model_dir))
    ids = tokenizer.encode(expected["prompt"], add_special_tokens=False)
    assert ids == expected["prompt_ids"]  # the tokenizer came through whole too
    return [int(t) for t, _ in generate_step(mx.array(ids), model,
                                             max_tokens=expected["max_tokens"])]


def pull(repo, root, hub, *extra):
    _, lines = modelsync("pull", repo, "--json", *extra, root=root, endpoint=hub.url)
    return done_event(lines)


@pytest.mark.parametrize("name", ["tiny-llama-4bit", "tiny-qwen2-4bit", "tiny-qwen2-8bit",
                                  "tiny-llama-4bit-sharded", "small-llama-4bit"])
def test_pulled_model_generates_what_the_source_generated(name, mlx_fixtures, hub, tmp_path):
    _, expected = mlx_fixtures
    repo = expected["models"][name]
    done = pull(repo, tmp_path, hub)
    assert done["commit"] == expected["repos"][repo]["v2"]["commit"]
    assert Path(done["marker"]["path"]).exists()
    assert generate(Path(done["model_dir"]), expected) == expected["repos"][repo]["v2"]["tokens"]


def test_update_v1_to_v2_fetches_the_changed_weights_and_generates_as_v2(mlx_fixtures, hub, tmp_path):
    _, expected = mlx_fixtures
    want = expected["repos"][LLAMA]
    assert want["v1"]["tokens"] != want["v2"]["tokens"]  # the fixture can tell them apart
    v1 = pull(LLAMA + "@v1", tmp_path, hub)
    assert v1["commit"] == want["v1"]["commit"]
    assert generate(Path(v1["model_dir"]), expected) == want["v1"]["tokens"]
    v2 = pull(LLAMA, tmp_path, hub)
    assert v2["commit"] == want["v2"]["commit"]
    # Only the weights changed (one tensor): config, tokenizer and index are not fetched again.
    weights = (Path(v2["model_dir"]) / "model.safetensors").stat().st_size
    assert v2["bytes_fetched"] == weights < v2["bytes_total"]
    assert generate(Path(v2["model_dir"]), expected) == want["v2"]["tokens"]


def test_kill_9_mid_pull_then_resume_generates_exactly(mlx_fixtures, hub, tmp_path):
    _, expected = mlx_fixtures
    repo = SMALL
    hub.faults({"match": "model.safetensors", "listener": "cdn", "throttle_bps": 2000000})
    root = tmp_path / "root"
    p = subprocess.Popen([MODELSYNC, "pull", repo, "--quiet", "--connections", "1", "--root",
                          str(root), "--endpoint", hub.url], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    partial = root / ".modelsync" / "partial"
    deadline = time.monotonic() + 20
    # Once the weights' partial file exists, 1.5 s of bytes (3 MB of ~10 MB, three sync
    # intervals of 0.5 s) are let in, then kill -9.
    while time.monotonic() < deadline and p.poll() is None:
        if partial.is_dir() and any(f.is_file() for f in partial.rglob("*")):
            time.sleep(1.5)
            break
        time.sleep(0.05)
    assert p.poll() is None, "the throttled pull ended before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (root / "small-llama-4bit").exists()  # no marker for a half model
    hub.reset()
    done = pull(repo, root, hub)
    weights = (Path(done["model_dir"]) / "model.safetensors").stat().st_size
    assert 0 < done["bytes_fetched"] < done["bytes_total"]
    assert done["bytes_fetched"] < weights  # the weights resumed, not restarted
    cdn_gets = [e for e in hub.log() if e["listener"] == "cdn" and e["method"] == "GET"]
    assert cdn_gets and all(e["range"].startswith("bytes=") and not e["range"].startswith("bytes=0-")
                            for e in cdn_gets)
    assert generate(Path(done["model_dir"]), expected) == expected["repos"][repo]["v2"]["tokens"]


def test_rebuild_from_the_log_gives_a_model_mlx_loads(mlx_fixtures, hub, tmp_path):
    _, expected = mlx_fixtures
    done = pull("mlx-test/tiny-qwen2-4bit", tmp_path, hub)
    shutil.rmtree(tmp_path / "models")
    os.unlink(done["marker"]["path"])
    modelsync("rebuild", root=tmp_path)  # no network: from the log and the blob store
    assert Path(done["marker"]["path"]).exists()
    assert (generate(Path(done["model_dir"]), expected) ==
            expected["repos"]["mlx-test/tiny-qwen2-4bit"]["v2"]["tokens"])


def mlx_loads(model_dir: Path):
    """None when mlx_lm.load accepts the directory, else its error."""
    try:
        load(str(model_dir))
        return None
    except Exception as e:  # whatever MLX raises is its refusal
        return e


def modelsync_accepts(model_dir: Path, root: Path):
    """(accepted, message): modelsync's model checks through add-local."""
    p, _ = modelsync("add-local", str(model_dir), "--id", "probe", root=root, check=False)
    return p.returncode == 0, p.stderr


def test_model_check_agrees_with_mlx_on_every_fixture(mlx_fixtures, tmp_path):
    out, expected = mlx_fixtures
    for name in expected["models"]:
        assert mlx_loads(out / "models" / name) is None, name
        ok, err = modelsync_accepts(out / "models" / name, tmp_path / name)
        assert ok, f"{name}: MLX loads it but modelsync refused: {err}"
        assert (tmp_path / name / "probe").exists()


@pytest.mark.parametrize("variant", ["missing-tokenizer", "wrong-shape", "wrong-group-size-layer",
                                     "missing-shard"])
def test_model_check_refuses_what_mlx_refuses(variant, mlx_fixtures, tmp_path):
    out, expected = mlx_fixtures
    assert variant in expected["broken"]
    assert mlx_loads(out / "broken" / variant) is not None, f"MLX loaded {variant}"
    ok, err = modelsync_accepts(out / "broken" / variant, tmp_path)
    assert not ok, f"MLX refuses {variant} but modelsync accepted it"
    assert "is not a model MLX can load" in err
    assert not (tmp_path / "probe").exists()


def test_top_level_group_size_mlx_swift_refuses_mlx_lm_infers(mlx_fixtures, tmp_path):
    """The one deliberate disagreement (engine/MODEL_CHECKS.md): mlx-lm infers each layer's
    group size from the tensors; MLX Swift uses config.json's and refuses. modelsync sides
    with MLX Swift, its apps' loader, and says which number is wrong."""
    out, _ = mlx_fixtures
    assert mlx_loads(out / "broken" / "wrong-group-size") is None
    ok, err = modelsync_accepts(out / "broken" / "wrong-group-size", tmp_path)
    assert not ok
    assert "its group size is 64, not config.json's 32" in err and "MLX Swift" in err
