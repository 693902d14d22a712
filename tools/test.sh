#!/usr/bin/env bash
# Installs what is missing, checks that the engine reaches the world only through its Env
# (tools/check_env.sh), builds, and runs the whole test suite twice: on the normal build (the
# linux platform file) and under AddressSanitizer + UndefinedBehaviorSanitizer on the portable
# platform file (base/platform_posix.cc, docs/PLATFORM.md: no RENAME_EXCHANGE, syncfs, direct
# I/O, reflinks or OFD locks there, so the two-rename swaps, per-file syncs, the converter's
# buffered writes and flock run); then every libFuzzer target for a bounded time
# (tools/fuzz/run.sh, clang, build-fuzz/).
# Usage: tools/test.sh [--fast]   (--fast: the check and the normal build only)
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step says how long it took (stderr), so a slow CI run shows where the time went.
step() {
  local what=$1 start=$SECONDS
  shift
  "$@"
  echo "test.sh: $what took $((SECONDS - start)) s" >&2
}
step "install-deps" bash tools/install-deps.sh
# Work that is started beside a step and waited for before the step that needs it, with its
# output kept until then. The builds beside a suite run at the lowest priority (nice 19): they
# take only the CPU the suite leaves idle (its waits on processes, sockets and fsync, its last
# long tests), and run at full speed once the suite is done.
bg_pid="" bg_log="" bg_what="" bg_nice=0 bg_start=0
trap '[ -n "$bg_pid" ] && kill -- "-$bg_pid" 2>/dev/null; rm -f "$bg_log"' EXIT
# beside WHAT NICE COMMAND...
beside() {
  bg_what=$1 bg_nice=$2 bg_log=$(mktemp) bg_start=$SECONDS
  shift 2
  # setsid: its own process group, so the trap stops all of it. A new session is also a new
  # scheduler autogroup (Linux), and autogroups share the CPU equally whatever their
  # processes' nice values: the group itself gets the nice value too, else a build "beside" a
  # suite took half the CPU (the normal suite 85 -> 145 s).
  setsid bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null || true; exec nice -n "$0" "$@"' \
    "$bg_nice" "$@" >"$bg_log" 2>&1 &
  bg_pid=$!
}
await() {
  local rc=0
  wait "$bg_pid" || rc=$?
  bg_pid=""
  cat "$bg_log" >&2
  rm -f "$bg_log"
  if ((rc != 0)); then
    echo "test.sh: $bg_what failed (exit $rc); its output is above" >&2
    exit 1
  fi
  echo "test.sh: $bg_what took $((SECONDS - bg_start)) s (begun beside the step before)" >&2
}
# .venv (pytest & co., pinned in tools/requirements.txt) is made beside the normal build:
# mostly downloads; nothing before the suite uses it.
beside "setup-venv" 0 bash tools/setup-venv.sh
step "check_env" bash tools/check_env.sh
jobs=$(nproc 2>/dev/null || echo 2)
# Tests, twice as many as cores: most of them wait on processes, sockets and fsync (the suite
# at -j 2 kept one of this machine's two cores busy), so -j 4 ran the normal suite in 84 s
# instead of 138 s.
tests=$((2 * jobs))
step "the normal build" bash tools/build.sh
await
full=1
[ "${1:-}" = "--fast" ] && full=0
((full)) && beside "the ASan/UBSan build (posix)" 19 bash tools/build.sh --sanitize
step "the suite (normal build)" bash -c "cd build && ctest --output-on-failure -j $tests"
if ((full)); then
  await
  beside "the fuzz targets' build" 19 bash tools/fuzz/run.sh --build
  step "the suite (ASan/UBSan, posix)" bash -c "cd build-san && ASAN_OPTIONS=detect_leaks=1 \
    UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $tests"
  await
  step "fuzzing" bash tools/fuzz/run.sh 20
fi
echo "test.sh: all passed in $SECONDS s" >&2
