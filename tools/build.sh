#!/usr/bin/env bash
# Configures and builds modelsync into build/ (or build-san/ with --sanitize).
# Usage: tools/build.sh [--sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
extra=()
if [ "${1:-}" = "--sanitize" ]; then
  dir=build-san
  extra=(-DMODELSYNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
fi
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$dir" -G Ninja -DMODELSYNC_WERROR=ON "${extra[@]}" >/dev/null
cmake --build "$dir" -j "$jobs"
