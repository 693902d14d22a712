"""Fixtures of the ecosystem tests: the MLX fixture models (tools/mlx_fixtures) served by the
hub emulator, the modelsync CLI, and an environment nothing of this machine steers."""
import json
import os
import subprocess
from pathlib import Path

import pytest
from hub_emulator import BUILD, Emulator  # tests/support (on PYTHONPATH)

import make_mlx_fixtures  # tools/mlx_fixtures (on PYTHONPATH)

MODELSYNC = str(BUILD / "cli/modelsync")
STEERING = ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_HOME", "HF_HUB_CACHE",
            "HF_XET_CACHE", "MODELSYNC_ROOT", "http_proxy", "https_proxy", "HTTPS_PROXY",
            "HTTP_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY", "CURL_CA_BUNDLE",
            "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "XDG_CACHE_HOME")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """Nothing from this machine's environment steers a test; no cache of the user's is touched."""
    for v in STEERING:
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@pytest.fixture(scope="session")
def mlx_fixtures(tmp_path_factory):
    """(directory, expected.json) of tools/mlx_fixtures/make_mlx_fixtures.py, made once."""
    out = tmp_path_factory.mktemp("mlx") / "fixtures"
    make_mlx_fixtures.main(out)
    return out, json.loads((out / "expected.json").read_text())


@pytest.fixture(scope="session")
def mlx_hub(mlx_fixtures, tmp_path_factory):
    emu = Emulator(mlx_fixtures[0] / "repos", tmp_path_factory.mktemp("emu"))
    yield emu
    emu.stop()


@pytest.fixture
def hub(mlx_hub):
    mlx_hub.reset()
    yield mlx_hub
    mlx_hub.reset()


def modelsync(*args, root=None, endpoint=None, env=None, check=True, timeout=120):
    """Runs the CLI; returns (CompletedProcess, the --json lines parsed when asked for)."""
    cmd = [MODELSYNC, *args]
    if root is not None:
        cmd += ["--root", str(root)]
    if endpoint is not None:
        cmd += ["--endpoint", endpoint]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")] if "--json" in args else []
    return p, lines


def done_event(lines):
    return next(x for x in lines if x.get("event") == "done")
