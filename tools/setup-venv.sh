#!/usr/bin/env bash
# Creates (or brings up to date) .venv with the pinned Python packages of tools/requirements.txt:
# the tests that use Python's ecosystem run from it (ctest finds it at <repo>/.venv).
# Idempotent: reinstalls only when the requirements changed. Usage: tools/setup-venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
req=tools/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then exit 0; fi
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "setup-venv: .venv ready ($(.venv/bin/python --version), $(wc -l < "$req") lines of $req)"
