#!/usr/bin/env bash
# Runs tests/capi_test.c (the C API from C) against the hub emulator: fixtures, the emulator
# on loopback with its CDN throttled (a pull must last long enough to be cancelled), then the
# program; the emulator is stopped by its pid whatever happens. Usage: capi_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: capi_test.sh BUILD_DIR}" && pwd)
work=$(mktemp -d)
emu_pid=""
cleanup() {
  [ -z "$emu_pid" ] || { kill "$emu_pid" 2>/dev/null || true; wait "$emu_pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
"$build/tools/fixtures/make_fixtures" --out "$work/repos" --weights-bytes 6MiB \
  --only model versions >/dev/null
"$build/tools/emulator/hub_emulator" --repos "$work/repos" >"$work/emu.json" 2>"$work/emu.err" &
emu_pid=$!
for _ in $(seq 100); do [ -s "$work/emu.json" ] && break; sleep 0.1; done
hub=$(sed -e 's/.*"hub":"\([^"]*\)".*/\1/' "$work/emu.json")
[ -n "$hub" ] || { echo "capi_test.sh: the emulator did not start:"; cat "$work/emu.err"; exit 1; }
curl -sf -X POST -d '{"faults":[{"match":"model.safetensors","listener":"cdn","throttle_bps":6000000}]}' \
  "$hub/_emulator/faults" >/dev/null
mkdir -p "$work/roots"
"$build/tests/capi_test" "$hub" "$work/roots"
