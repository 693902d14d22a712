#!/usr/bin/env bash
# Configures and builds modelsync into build/ (or build-san/ with --sanitize, or build-posix/
# with --posix: the portable platform file, base/platform_posix.cc, docs/PLATFORM.md).
# Usage: tools/build.sh [--sanitize | --posix [TARGET...]]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
extra=()
targets=()
case "${1:-}" in
  --sanitize)
    dir=build-san
    extra=(-DMODELSYNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug) ;;
  --posix)
    dir=build-posix
    # Unoptimised and without debug info: it is built to run the portable suites once, and
    # -O0 compiles about twice as fast on CI's two cores (assertions stay on).
    extra=(-DMODELSYNC_PLATFORM=posix -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O0)
    shift
    for t in "$@"; do targets+=(--target "$t"); done ;;
esac
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$dir" -G Ninja -DMODELSYNC_WERROR=ON "${extra[@]}" >/dev/null
cmake --build "$dir" -j "$jobs" "${targets[@]}"
