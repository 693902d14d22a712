#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs modelsync against the bundled hub.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
root=$(mktemp -d /tmp/modelsync-demo.XXXXXX)
echo "== modelsync --version"
build/cli/modelsync --version
echo "== demo root: $root"
echo "(the pull demo against the hub emulator arrives with issue 4)"
