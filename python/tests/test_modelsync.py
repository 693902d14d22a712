"""The Python package against the hub emulator, through libmodelsync: what a program built on
mlx-lm would do with it."""
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import modelsync
from conftest import BUILD, REPO

THROTTLE = {"match": "model.safetensors", "listener": "cdn", "throttle_bps": 3_000_000}


def test_pull_events_result_and_reads(emu, tmp_path):
    events = []
    m = modelsync.pull(REPO, root=str(tmp_path), endpoint=emu.url, progress=events.append)
    assert Path(m.path, "config.json").is_file()
    assert m.path == str(tmp_path / "models" / REPO)
    assert m.marker == str(tmp_path / "Tiny-Model-4bit") and Path(m.marker).exists()
    assert m.marker_written and m.marker_note == ""
    assert len(m.commit) == 40 and m.ref == "main" and m.repo == REPO
    assert m.bytes_fetched == m.bytes_total > 6_000_000
    kinds = [e.kind for e in events]
    assert kinds[0] == "resolved" and events[0].commit == m.commit
    assert "progress" in kinds and "file_done" in kinds
    done = [e.bytes_done for e in events if e.kind == "progress"]
    assert done == sorted(done) and done[-1] <= m.bytes_total
    assert {e.path for e in events if e.kind == "file_done"} >= {"config.json", "model.safetensors"}
    # Reading the root: the CLI's documents.
    [model] = modelsync.ls(str(tmp_path))
    assert model["repo"] == REPO and model["commit"] == m.commit and model["loadable"]
    st = modelsync.status(str(tmp_path), REPO)
    assert st["repos"][0]["state"] == "complete" and st["daemon"] is None
    again = modelsync.pull(REPO, root=str(tmp_path), endpoint=emu.url)
    assert again.up_to_date and again.bytes_fetched == 0


def _cancel_when_moving(cancel):
    def on_event(e):
        # A third of the way, the weights file has bytes on disk (a cancel keeps them); the
        # first bytes may be a small file's, held in memory until verified (a cancel drops them).
        if e.kind == "progress" and e.bytes_done * 3 >= e.bytes_total:
            threading.Thread(target=cancel.fire).start()  # from another thread
    return on_event


def test_cancel_from_another_thread_then_resume(emu, tmp_path):
    emu.faults(THROTTLE)
    cancel = modelsync.Cancel()
    with modelsync.Root(str(tmp_path), endpoint=emu.url, from_environment=False) as root:
        t0 = time.monotonic()
        with pytest.raises(modelsync.CancelledError) as e:
            root.pull(REPO, progress=_cancel_when_moving(cancel), cancel=cancel)
        assert time.monotonic() - t0 < 2.0  # promptly, not at the end of a 2 s transfer
        assert e.value.kind == "Cancelled" and e.value.code == 130
        assert not (tmp_path / "Tiny-Model-4bit").exists()
        emu.reset()
        m = root.pull(REPO)
        assert 0 < m.bytes_fetched < m.bytes_total  # resumed: the kept bytes were not refetched
        assert Path(m.marker).exists()


def test_keyboard_interrupt_cancels_promptly_and_resumes(emu, tmp_path):
    emu.faults(THROTTLE)
    fired = threading.Event()

    def on_event(e):
        if e.kind == "progress" and e.bytes_done * 3 >= e.bytes_total and not fired.is_set():
            fired.set()
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does

    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        modelsync.pull(REPO, root=str(tmp_path), endpoint=emu.url, progress=on_event)
    assert time.monotonic() - t0 < 2.0
    emu.reset()
    m = modelsync.pull(REPO, root=str(tmp_path), endpoint=emu.url)
    assert 0 < m.bytes_fetched < m.bytes_total


def test_a_progress_callback_that_raises_stops_the_pull_with_its_exception(emu, tmp_path):
    def boom(e):
        raise RuntimeError("the app's own bug")

    with pytest.raises(RuntimeError, match="the app's own bug"):
        modelsync.pull(REPO, root=str(tmp_path), endpoint=emu.url, progress=boom)


def test_every_error_class_from_a_real_fault(emu, tmp_path, monkeypatch):
    root = str(tmp_path / "r")
    with pytest.raises(modelsync.NotFoundError) as e:
        modelsync.pull("nobody/no-such-model", root=root, endpoint=emu.url)
    assert "nobody/no-such-model" in str(e.value) and e.value.kind == "NotFound"
    with pytest.raises(modelsync.InvalidArgumentError):
        modelsync.Root(root, endpoint="ftp://hub.example")
    with pytest.raises(ValueError):  # InvalidArgumentError is a ValueError too
        modelsync.pull("", root=root, endpoint=emu.url)
    with pytest.raises(modelsync.OfflineError) as e:
        modelsync.Root(root, endpoint=emu.url, offline=True).pull(REPO)
    assert isinstance(e.value, modelsync.NetworkError)
    # A CDN that serves a damaged byte every time: the content fails its hash twice.
    emu.faults({"match": "model.safetensors", "listener": "cdn", "flip_byte_at": 1000})
    with pytest.raises(modelsync.IntegrityError):
        modelsync.pull(REPO, root=root, endpoint=emu.url)
    emu.reset()
    # Retries exhausted on a hub that keeps failing (two attempts, from the environment).
    emu.faults({"match": "/api/models/*", "status_sequence": [503] * 10})
    monkeypatch.setenv("MODELSYNC_HUB_ATTEMPTS", "2")
    with pytest.raises(modelsync.NetworkError) as e:
        modelsync.Root(root, endpoint=emu.url).pull(REPO)
    assert e.value.kind == "Transient"
    emu.reset()


def test_root_in_use_with_no_wait(emu, tmp_path):
    emu.faults(THROTTLE)
    root = str(tmp_path)
    env = dict(os.environ, MODELSYNC_ROOT=root, HF_ENDPOINT=emu.url)
    cli = subprocess.Popen([str(BUILD / "cli/modelsync"), "pull", REPO, "--quiet"], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (tmp_path / ".modelsync").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # the CLI holds the root's lock while it fetches (2 s of throttle)
        with pytest.raises(modelsync.RootInUseError) as e:
            modelsync.Root(root, endpoint=emu.url, no_wait=True).pull(REPO)
        assert e.value.code == 4
    finally:
        cli.kill()
        cli.wait()


def test_no_space_on_a_full_disk(emu, tmp_path):
    """A 2 MiB tmpfs in a private mount namespace (root only, as CI runs) holds the root."""
    assert os.geteuid() == 0, "this test mounts a tmpfs: run the suite as root (CI does)"
    code = (
        "import sys, modelsync\n"
        "try:\n"
        f"    modelsync.pull({REPO!r}, root=sys.argv[1], endpoint={emu.url!r})\n"
        "except modelsync.NoSpaceError as e:\n"
        "    print('NoSpaceError', e.kind); sys.exit(0)\n"
        "sys.exit(3)\n")
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = (f"mount -t tmpfs -o size=2m tmpfs '{mnt}' && "
              f"exec '{os.sys.executable}' -c \"$0\" '{mnt}/root'")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script, code], capture_output=True,
                       text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "NoSpaceError NoSpace" in r.stdout


def test_newer_format_refused(emu, tmp_path):
    import lmdb
    root = str(tmp_path)
    modelsync.pull(REPO, root=root, endpoint=emu.url, include=["config.json"])
    env = lmdb.open(str(tmp_path / ".modelsync" / "log"), max_dbs=4)
    with env.begin(write=True) as txn:
        txn.put(b"format_version", b"\x00\x00\x00\x63", db=env.open_db(b"meta", txn=txn))
    env.close()
    with pytest.raises(modelsync.NewerFormatError) as e:
        modelsync.status(root)
    assert "upgrade modelsync" in str(e.value)


def test_two_roots_in_one_process(emu, tmp_path):
    results, errors = {}, []

    def run(name):
        try:
            results[name] = modelsync.pull(REPO, root=str(tmp_path / name), endpoint=emu.url)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results["a"].commit == results["b"].commit
    assert Path(results["a"].marker).exists() and Path(results["b"].marker).exists()


def test_verify_finds_damage_and_repairs(emu, tmp_path):
    root = str(tmp_path)
    m = modelsync.pull(REPO, root=root, endpoint=emu.url)
    assert modelsync.verify(root)["damaged"] is False
    w = Path(m.path, "model.safetensors")
    data = bytearray(w.read_bytes())
    data[5000] ^= 0xFF
    with open(w, "r+b") as f:
        f.seek(5000)
        f.write(bytes([data[5000]]))
    with pytest.raises(modelsync.IntegrityError) as e:
        modelsync.verify(root, REPO)
    assert any(i["path"] == "model.safetensors" for i in e.value.report["issues"])
    with modelsync.Root(root, endpoint=emu.url) as r:
        assert r.verify(repair=True)["repaired"] is True
    assert modelsync.verify(root)["damaged"] is False
    modelsync.remove(REPO, root)
    assert not Path(m.marker).exists()
    assert modelsync.gc(root) > 0


def test_snapshot_download_shape(emu, tmp_path):
    path = modelsync.snapshot_download(REPO, allow_patterns=["*.json"], local_dir=str(tmp_path),
                                       endpoint=emu.url)
    files = sorted(p.name for p in Path(path).iterdir())
    assert files and all(f.endswith(".json") for f in files)
    with pytest.raises(modelsync.InvalidArgumentError):
        modelsync.snapshot_download(REPO, repo_type="dataset", local_dir=str(tmp_path))


def test_no_leaked_threads_or_descriptors(emu, tmp_path):
    modelsync.pull(REPO, root=str(tmp_path), endpoint=emu.url)  # warm: curl's global state
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    for _ in range(1000):
        with modelsync.Root(str(tmp_path), endpoint=emu.url) as r:
            r.ls()
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == fds


def test_diff_says_what_an_update_changes(emu, tmp_path):
    root = str(tmp_path)
    v1 = modelsync.pull("fixtures/versions", root=root, revision="v1", endpoint=emu.url)
    d = modelsync.diff("fixtures/versions", root, endpoint=emu.url)
    assert d["from_commit"] == v1.commit and d["to_ref"] == "main"
    assert not d["identical"] and d["remote"]
    kinds = {c["kind"] for c in d["changes"]}
    assert kinds & {"added", "modified", "removed", "renamed"}
    main = modelsync.pull("fixtures/versions", root=root, endpoint=emu.url)
    assert main.commit == d["to_commit"]
    assert modelsync.diff("fixtures/versions", root, local=True)["identical"]


def test_a_read_during_a_pull_of_the_same_root_waits_instead_of_failing(emu, tmp_path):
    emu.faults(THROTTLE)
    r = modelsync.Root(str(tmp_path), endpoint=emu.url, from_environment=False)
    started, out = threading.Event(), {}

    def run():
        out["pull"] = r.pull(REPO, progress=lambda e: started.set())

    t = threading.Thread(target=run)
    t.start()
    assert started.wait(10)
    models = r.ls()  # LMDB allows one open per process: this waits for the pull
    t.join()
    assert [m["repo"] for m in models] == [REPO]
    assert out["pull"].marker_written
    r.close()


def test_inspect_catalog_and_add_local(emu, tmp_path):
    m = modelsync.pull(REPO, root=str(tmp_path / "a"), endpoint=emu.url)
    info = modelsync.inspect(REPO, str(tmp_path / "a"))
    assert info["commit"] == m.commit and info["is_model"] and info["tensors"] > 0
    names = {e["name"] for e in modelsync.catalog()}
    assert names and all(isinstance(e["parameters"], int) for e in modelsync.catalog())
    with modelsync.Root(str(tmp_path / "b"), from_environment=False) as b:
        added = b.add_local(m.path, "mine")
        assert added["repo"] == "local/mine" and Path(added["marker"]["path"]).exists()
        assert b.verify()["damaged"] is False
        weights_only = tmp_path / "weights-only"
        weights_only.mkdir()
        (weights_only / "model.safetensors").write_bytes(Path(m.path, "model.safetensors").read_bytes())
        with pytest.raises(modelsync.InvalidArgumentError) as e:
            b.add_local(str(weights_only), "broken")  # no config.json: not a model
        assert "config.json" in str(e.value)
        with pytest.raises(modelsync.InvalidArgumentError):
            b.add_local(str(tmp_path / "no-such-dir"), "none")
        assert b.verify()["damaged"] is False  # the refusals changed nothing that matters
        assert [x["model_id"] for x in b.ls()] == ["mine"]


def test_log_and_the_daemon(emu, tmp_path):
    root = str(tmp_path)
    with modelsync.Root(root, endpoint=emu.url, from_environment=False) as r:
        m = r.pull(REPO)
        events = r.log()
        assert events[0]["seq"] == 1
        assert any(e.get("kind") == "RevisionActivated" and e["event"]["commit"] == m.commit
                   for e in events)
        assert r.log(repo="fixtures/versions") == []
        with pytest.raises(modelsync.NotFoundError):
            r.daemon("status")
        r.track(REPO)
        env = dict(os.environ, MODELSYNC_ROOT=root, HF_ENDPOINT=emu.url)
        d = subprocess.Popen([str(BUILD / "cli/modelsync"), "daemon"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            state = None
            for _ in range(200):
                try:
                    state = r.daemon("status")
                    break
                except modelsync.NotFoundError:
                    time.sleep(0.05)
            assert state is not None and state["pid"] == d.pid
            after = r.daemon("sync-now")
            assert after["pid"] == d.pid
            with pytest.raises(modelsync.InvalidArgumentError):
                r.daemon("explode")
        finally:
            d.terminate()
            d.wait(10)
