#!/usr/bin/env bash
# Installs what is missing, checks that the engine reaches the world only through its Env
# (tools/check_env.sh), builds, and runs the whole test suite: once on the normal build, once
# under AddressSanitizer + UndefinedBehaviorSanitizer; then the crash, power-loss, I/O-error,
# storage, pull and conversion-crash suites on the portable (posix) build (docs/PLATFORM.md:
# no direct I/O there, so the converter's buffered path runs); then every
# libFuzzer target for a bounded time (tools/fuzz/run.sh, clang, build-fuzz/).
# Usage: tools/test.sh [--fast]   (--fast: the check and the normal build only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/setup-venv.sh   # .venv: pytest & co. pinned in tools/requirements.txt
bash tools/check_env.sh
jobs=$(nproc 2>/dev/null || echo 2)
bash tools/build.sh
(cd build && ctest --output-on-failure -j "$jobs")
if [ "${1:-}" != "--fast" ]; then
  bash tools/build.sh --sanitize
  (cd build-san && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest --output-on-failure -j "$jobs")
  posix_tests=(crash_test io_error_test pull_test storage_test convert_crash_test)
  bash tools/build.sh --posix modelsync hub_emulator make_fixtures "${posix_tests[@]}"
  (cd build-posix && ctest --output-on-failure -j "$jobs" \
     -R "^($(IFS='|'; echo "${posix_tests[*]}"))\$")
  bash tools/fuzz/run.sh 20
fi
