#!/usr/bin/env bash
# `pip install ./python` builds the package (setup.py builds libmodelsync with CMake, here in
# the given build directory) and installs a `modelsync` that imports and runs with its own
# bundled library, nothing else set. Runs with the repo's .venv (tools/setup-venv.sh), into a
# temporary target directory. Usage: python_install_test.sh BUILD_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build=$(cd "${1:?usage: python_install_test.sh BUILD_DIR}" && pwd)
py="$here/.venv/bin/python"
[ -x "$py" ] || { echo "no $py: run tools/setup-venv.sh (tools/test.sh does)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
MODELSYNC_BUILD_DIR="$build" "$py" -m pip install -q --disable-pip-version-check \
  --no-build-isolation --no-deps --target "$work/site" "$here/python"
test -f "$work/site/modelsync/libmodelsync.so"
out=$(cd "$work" && env -u MODELSYNC_LIBRARY PYTHONPATH="$work/site" "$py" -c '
import modelsync, os
print(modelsync.version(), os.path.basename(modelsync._lib._find()))
r = modelsync.Root(os.path.join(os.getcwd(), "root"), from_environment=False)
assert r.ls() == []
try:
    modelsync.Root("x", endpoint="not a url")
except modelsync.InvalidArgumentError as e:
    print("refused:", e.kind)
')
echo "$out"
[ "$(echo "$out" | head -1)" = "0.1.0 libmodelsync.so" ]
echo "$out" | grep -q "refused: InvalidArgument"
echo "python_install_test: ok"
