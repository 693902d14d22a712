"""Builds libmodelsync (the C API) with CMake from the repository this package sits in, and
ships it inside the package: `pip install ./python` is the whole installation.

MODELSYNC_BUILD_DIR: a CMake build directory to (re)use (default: <repo>/build); only the
`modelsync_shared` target is built there.
"""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

REPO = Path(__file__).resolve().parent.parent


def build_library() -> Path:
    build = Path(os.environ.get("MODELSYNC_BUILD_DIR") or REPO / "build")
    if not (build / "CMakeCache.txt").exists():
        subprocess.check_call(["cmake", "-S", str(REPO), "-B", str(build), "-G", "Ninja"])
    subprocess.check_call(["cmake", "--build", str(build), "--target", "modelsync_shared"])
    lib = build / "capi" / "libmodelsync.so"
    if not lib.exists():
        raise RuntimeError(f"the build did not produce {lib}")
    return lib.resolve()


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "modelsync" / "libmodelsync.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(build_library(), target)


class BinaryDistribution(Distribution):
    """The wheel carries a native library: tag it for this platform."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=BinaryDistribution)
