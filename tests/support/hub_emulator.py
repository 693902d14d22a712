"""The hub emulator for Python tests: a repos directory served on loopback by
build/tools/emulator/hub_emulator, started by the test and stopped by its pid, with its
control API (tools/EMULATOR.md). MODELSYNC_BUILD_DIR names the build."""
import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

BUILD = Path(os.environ.get("MODELSYNC_BUILD_DIR", Path(__file__).resolve().parents[2] / "build"))


def make_fixtures(out: Path, *only: str, weights_bytes: str = "6MiB") -> Path:
    """Writes make_fixtures' repos (tools/EMULATOR.md "Fixtures") into out."""
    args = [str(BUILD / "tools/fixtures/make_fixtures"), "--out", str(out),
            "--weights-bytes", weights_bytes]
    for name in only:
        args += ["--only", name]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return out


class Emulator:
    def __init__(self, repos: Path, workdir: Path, *extra_args: str):
        self.out = open(workdir / "emu.json", "w+")
        self.proc = subprocess.Popen([str(BUILD / "tools/emulator/hub_emulator"), "--repos",
                                      str(repos), *extra_args],
                                     stdout=self.out, stderr=subprocess.DEVNULL)
        line = ""
        for _ in range(500):
            self.out.seek(0)
            line = self.out.readline()
            if line.strip() or self.proc.poll() is not None:
                break
            time.sleep(0.02)
        if not line.strip():
            self.stop()
            raise RuntimeError("the hub emulator did not start")
        urls = json.loads(line)
        self.url, self.cdn = urls["hub"], urls["cdn"]

    def control(self, path: str, body=None, method="POST"):
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.url + "/_emulator/" + path, data=data, method=method)
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read() or b"{}")

    def faults(self, *rules):
        self.control("faults", {"faults": list(rules)})

    def configure(self, **settings):
        self.control("config", settings)

    def reset(self):
        self.control("reset")

    def stats(self):
        return self.control("stats", method="GET")

    def log(self, since: int = 0):
        """Request log entries with seq > since (tools/EMULATOR.md)."""
        return self.control(f"log?since={since}", method="GET")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.out.close()
