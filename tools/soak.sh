#!/usr/bin/env bash
# Seeded SIGKILL soak (issue #6): kills `modelsync pull` at random instants against the
# emulator (CDN throttled so the kill lands mid-transfer), finishes it, and checks the
# invariants after every kill: the finishing pull exits 0, `verify` exits 0, `rebuild` finds
# nothing to do. Between kills the model is removed and gc'ed, so every round starts from no
# blobs and re-fetched bytes are exact: CDN body bytes of the round - the weights' size.
# Usage: bash tools/soak.sh [KILLS=50] [SEED=1] [WEIGHTS=8MiB] [RATE_BPS=16000000]
# MODELSYNC_BUILD_DIR picks the build (default build/). Needs: ninja -C build modelsync hub_emulator make_fixtures. Prints kills survived and
# re-fetched bytes per kill (mean, p99); on a broken invariant prints the seed and round.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-50}
seed=${2:-1}
weights=${3:-8MiB}
rate=${4:-16000000}
RANDOM=$seed
bdir=${MODELSYNC_BUILD_DIR:-build}
work=$(mktemp -d /tmp/modelsync-soak.XXXXXX)
cleanup() { [ -n "${emu_pid:-}" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bdir"/tools/fixtures/make_fixtures --out "$work/repos" --weights-bytes "$weights" --only model >/dev/null
"$bdir"/tools/emulator/hub_emulator --repos "$work/repos" >"$work/emu.json" 2>"$work/emu.err" &
emu_pid=$!
for _ in $(seq 100); do [ -s "$work/emu.json" ] && break; sleep 0.1; done
hub=$(sed -e 's/.*"hub":"\([^"]*\)".*/\1/' "$work/emu.json")
export MODELSYNC_ROOT="$work/root" HF_ENDPOINT="$hub" MODELSYNC_STALL_TIMEOUT=2s
unset HF_TOKEN HF_HUB_OFFLINE || true
ms="$bdir"/cli/modelsync
repo=mlx-community/Tiny-Model-4bit
cdn_bytes() { curl -s "$hub/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cdn"]["body_bytes"])'; }
fail() { echo "INVARIANT BROKEN at round $1 (seed $seed): $2"; exit 1; }
throttle() {
  curl -s -X POST -d "{\"faults\":[{\"match\":\"model.safetensors\",\"listener\":\"cdn\",\"throttle_bps\":$rate}]}" \
    "$hub/_emulator/faults" >/dev/null
}

# The weights' size: one clean pull.
$ms pull "$repo" --quiet
size=$(stat -c %s "$MODELSYNC_ROOT/models/$repo/model.safetensors")
refetched=()
summary() {
  if (( ${#refetched[@]} == 0 )); then echo "no kill hit a running pull in $1 rounds"; return; fi
  printf '%s\n' "${refetched[@]}" | sort -n | awk -v rounds="$1" -v seed="$seed" -v size="$size" '
  { v[NR] = $1; sum += $1 }
  END {
    i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1; p99 = v[i];
    printf "kills survived: %d in %d rounds (seed %d, weights %d bytes; other rounds finished before the kill)\n", NR, rounds, seed, size;
    printf "re-fetched bytes per kill: mean %.0f, p99 %d, max %d\n", sum / NR, p99, v[NR];
  }'
}
for round in $(seq 1 "$kills"); do
  $ms remove "$repo" >/dev/null || fail "$round" "remove failed"
  $ms gc >/dev/null || fail "$round" "gc failed"
  curl -s -X POST "$hub/_emulator/reset" >/dev/null
  throttle
  delay_ms=$(( RANDOM % 700 ))
  $ms pull "$repo" --quiet & pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  $ms pull "$repo" --quiet >"$work/out" 2>&1 || fail "$round" "pull after kill: $(cat "$work/out")"
  $ms verify --quiet >"$work/out" 2>&1 || fail "$round" "verify: $(cat "$work/out")"
  $ms rebuild --json >"$work/out" 2>&1 || fail "$round" "rebuild: $(cat "$work/out")"
  grep -q '"dir_rebuilt":false' "$work/out" || fail "$round" "rebuild had work to do: $(cat "$work/out")"
  got=$(cdn_bytes)
  # Only rounds where the kill hit a running pull count as kills (137 = SIGKILL).
  if (( rc == 137 )); then refetched+=( $(( got > size ? got - size : 0 )) ); fi
  if (( round % 100 == 0 )); then summary "$round" >&2; fi
done
summary "$kills"
