#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite twice: once on the normal
# build, once under AddressSanitizer + UndefinedBehaviorSanitizer; then runs every libFuzzer
# target for a bounded time (tools/fuzz/run.sh, clang, build-fuzz/).
# Usage: tools/test.sh [--fast]   (--fast: the normal build only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
bash tools/build.sh
(cd build && ctest --output-on-failure -j "$jobs")
if [ "${1:-}" != "--fast" ]; then
  bash tools/build.sh --sanitize
  (cd build-san && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs")
  bash tools/fuzz/run.sh 20
fi
