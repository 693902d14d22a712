#!/usr/bin/env bash
# The main job, end to end on this machine: installs what is missing, builds, starts the
# bundled hub emulator with an mlx-community-shaped model, pulls it with modelsync (progress
# on a terminal), interrupts a second pull half-way and resumes it, and shows the layout.
# Usage: bash tools/demo.sh [WEIGHTS_SIZE]   (default 256MiB)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh >/dev/null
size=${1:-256MiB}
work=$(mktemp -d /tmp/modelsync-demo.XXXXXX)
cleanup() { [ -n "${emu_pid:-}" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

echo "== fixtures: an mlx-community-shaped 4-bit model with $size of weights"
build/tools/fixtures/make_fixtures --out "$work/repos" --weights-bytes "$size" --only model >/dev/null
build/tools/emulator/hub_emulator --repos "$work/repos" >"$work/emu.json" 2>"$work/emu.err" &
emu_pid=$!
for _ in $(seq 100); do [ -s "$work/emu.json" ] && break; sleep 0.1; done
hub=$(sed -e 's/.*"hub":"\([^"]*\)".*/\1/' "$work/emu.json")
echo "   hub emulator at $hub (its CDN on 127.0.0.2)"

export MODELSYNC_ROOT="$work/root" HF_ENDPOINT="$hub"
ms=build/cli/modelsync
repo=mlx-community/Tiny-Model-4bit

echo "== modelsync pull $repo"
$ms pull "$repo"

echo "== the layout an MLX app loads"
(cd "$MODELSYNC_ROOT" && find models -type f | sort | xargs ls -l | awk '{print "   " $5 "\t" $9}'; \
 echo "   marker: $(ls -l Tiny-Model-4bit | awk '{print $5 " bytes  " $9}')")

echo "== a second pull: nothing to do"
$ms pull "$repo"

echo "== interrupted and resumed: a fresh root, the CDN throttled, kill -9 half-way"
export MODELSYNC_ROOT="$work/root2"
curl -s -X POST -d '{"faults":[{"match":"model.safetensors","listener":"cdn","throttle_bps":5000000}]}' \
  "$hub/_emulator/faults" >/dev/null
$ms pull "$repo" --quiet & pid=$!
sleep 1.5; kill -9 $pid 2>/dev/null || true; wait $pid 2>/dev/null || true
echo "   killed; status from the log:"
$ms status | sed 's/^/   /'
curl -s -X POST "$hub/_emulator/reset" >/dev/null
$ms pull "$repo"
echo "== status"
$ms status
echo "== demo files are under $work"
