"""The hub emulator for the Python package's tests: built fixtures served on loopback,
started by the test session and stopped by its pid (tests/support/hub_emulator.py)."""
from pathlib import Path

import pytest
from hub_emulator import BUILD, Emulator, make_fixtures  # tests/support (on PYTHONPATH)

REPO = "mlx-community/Tiny-Model-4bit"


class Hub(Emulator):
    def __init__(self, workdir: Path):
        repos = make_fixtures(workdir / "repos", "model", "versions")
        super().__init__(repos, workdir)


@pytest.fixture(scope="session")
def hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("hub"))
    yield h
    h.stop()


@pytest.fixture
def emu(hub):
    hub.reset()
    yield hub
    hub.reset()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Nothing from this machine's environment steers a test."""
    for v in ("HF_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT", "MODELSYNC_ROOT", "http_proxy",
              "https_proxy", "HTTPS_PROXY", "HTTP_PROXY", "all_proxy", "ALL_PROXY",
              "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(v, raising=False)
