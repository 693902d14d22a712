"""The hub emulator for the Python package's tests: built fixtures served on loopback,
started by the test session and stopped by its pid. MODELSYNC_BUILD_DIR names the build."""
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("MODELSYNC_BUILD_DIR", Path(__file__).resolve().parents[2] / "build"))
REPO = "mlx-community/Tiny-Model-4bit"


class Hub:
    def __init__(self, workdir: Path):
        repos = workdir / "repos"
        subprocess.run([str(BUILD / "tools/fixtures/make_fixtures"), "--out", str(repos),
                        "--weights-bytes", "6MiB", "--only", "model", "versions"],
                       check=True, stdout=subprocess.DEVNULL)
        self.out = open(workdir / "emu.json", "w+")
        self.proc = subprocess.Popen([str(BUILD / "tools/emulator/hub_emulator"), "--repos",
                                      str(repos)], stdout=self.out, stderr=subprocess.DEVNULL)
        for _ in range(200):
            self.out.seek(0)
            line = self.out.readline()
            if line.strip():
                break
            time.sleep(0.02)
        urls = json.loads(line)
        self.url, self.cdn = urls["hub"], urls["cdn"]

    def control(self, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        req = urllib.request.Request(self.url + "/_emulator/" + path, data=data, method="POST")
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"{}")

    def faults(self, *rules):
        self.control("faults", {"faults": list(rules)})

    def reset(self):
        self.control("reset")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.out.close()


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
