#!/usr/bin/env bash
# Seeded SIGKILL soak (issue #6). Each round picks, from the seed, an operation and (unless
# SOAK_FAULTS=0) a random emulator fault, starts the operation, kills it with SIGKILL at a
# random instant, then finishes the job and checks the invariants:
#   the finishing pull exits 0, `verify` exits 0, `rebuild` finds nothing to do.
# Operations: "fresh" (remove + gc, then pull the model: the CDN is throttled so the kill
# lands mid-transfer), "update" (versions repo v1 -> main), "gc" (remove, then gc killed).
# Fresh rounds start from no blobs, so re-fetched bytes are exact: CDN body bytes of the
# round minus the weights' size. The round's faults stay on for the finishing pull (they
# fire a limited number of times), so recovery is also exercised under faults.
#
# Usage: bash tools/soak.sh [KILLS=50] [SEED=1] [WEIGHTS=8MiB] [RATE_BPS=16000000]
# Env: SOAK_FAULTS=0 (no faults), MODELSYNC_BUILD_DIR (default build/),
#      MODELSYNC_SMALL_FILE_BYTES / MODELSYNC_CHUNK_BYTES (default 1MiB each here, so the
#      weights go through partial files and range events).
# Needs: ninja -C build modelsync hub_emulator make_fixtures. Prints kills survived and
# re-fetched bytes per kill (mean, p99), per fault / no fault; on a broken invariant prints
# the seed and round and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-50}
seed=${2:-1}
weights=${3:-8MiB}
rate=${4:-16000000}
faults_on=${SOAK_FAULTS:-1}
RANDOM=$seed
bdir=${MODELSYNC_BUILD_DIR:-build}
work=$(mktemp -d /tmp/modelsync-soak.XXXXXX)
cleanup() { [ -n "${emu_pid:-}" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$bdir"/tools/fixtures/make_fixtures --out "$work/repos" --weights-bytes "$weights" >/dev/null
"$bdir"/tools/emulator/hub_emulator --repos "$work/repos" >"$work/emu.json" 2>"$work/emu.err" &
emu_pid=$!
for _ in $(seq 100); do [ -s "$work/emu.json" ] && break; sleep 0.1; done
hub=$(sed -e 's/.*"hub":"\([^"]*\)".*/\1/' "$work/emu.json")
export MODELSYNC_ROOT="$work/root" HF_ENDPOINT="$hub" MODELSYNC_STALL_TIMEOUT=2s
export MODELSYNC_SMALL_FILE_BYTES=${MODELSYNC_SMALL_FILE_BYTES:-1MiB}
export MODELSYNC_CHUNK_BYTES=${MODELSYNC_CHUNK_BYTES:-1MiB}
unset HF_TOKEN HF_HUB_OFFLINE || true
ms="$bdir"/cli/modelsync
# The versions repo lives in a root of its own: its weights are the model's bytes, and a
# shared blob would let a "fresh" pull link instead of download.
msv="env MODELSYNC_ROOT=$work/vroot $ms"
repo=mlx-community/Tiny-Model-4bit
vrepo=fixtures/versions
cdn_bytes() { curl -s "$hub/_emulator/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cdn"]["body_bytes"])'; }
fail() { echo "INVARIANT BROKEN at round $1 (seed $seed, fault: ${fault_name:-none}): $2"; exit 1; }
set_faults() {
  curl -s -f -X POST -d "{\"faults\":[$1]}" "$hub/_emulator/faults" >/dev/null || fail "$round" "emulator refused faults $1"
}
throttle="{\"match\":\"model.safetensors\",\"listener\":\"cdn\",\"throttle_bps\":$rate}"
# Update rounds move small files only: 40 ms of latency per request spreads them out.
slow_versions='{"match":"fixtures/versions","listener":"both","latency_ms":40}'

# One random fault rule (and its name) from the menu; each fires a bounded number of times.
pick_fault() {
  fault_rule=""
  fault_name=none
  (( faults_on )) || return 0
  case $(( RANDOM % 9 )) in
    0|1) ;;  # no fault in 2 rounds of 9
    2) fault_name=drop; fault_rule="{\"match\":\"model.safetensors\",\"listener\":\"cdn\",\"drop_after_bytes\":$(( (RANDOM % 2000 + 1) * 1000 )),\"times\":3}" ;;
    3) fault_name=resolve-503; fault_rule="{\"match\":\"/resolve/\",\"listener\":\"hub\",\"status_sequence\":[503,503],\"retry_after\":0}" ;;
    4) fault_name=flip; fault_rule="{\"match\":\"model.safetensors\",\"listener\":\"cdn\",\"flip_byte_at\":$(( RANDOM * 97 % size_guess )),\"times\":1}" ;;
    5) fault_name=stall; fault_rule="{\"match\":\"model.safetensors\",\"listener\":\"cdn\",\"stall_after_bytes\":$(( RANDOM * 31 )),\"stall_ms\":4000,\"times\":1}" ;;
    6) fault_name=wrong-range; fault_rule="{\"match\":\"model.safetensors\",\"listener\":\"cdn\",\"wrong_content_range\":true,\"times\":1}" ;;
    7) fault_name=api-500; fault_rule="{\"match\":\"/api/models/\",\"listener\":\"hub\",\"status_sequence\":[500],\"retry_after\":0}" ;;
    8) fault_name=ignore-range; fault_rule="{\"match\":\"model.safetensors\",\"listener\":\"cdn\",\"ignore_range\":true,\"times\":2}" ;;
  esac
}

# Starts "$@" in the background, kills it with SIGKILL after a random delay below max_ms;
# sets rc to its exit status (137 = the kill hit it while it ran).
run_and_kill() {
  local max_ms=$1; shift
  local delay_ms=$(( (RANDOM * 32768 + RANDOM) % max_ms ))
  [ -n "${SOAK_VERBOSE:-}" ] && echo "kill after $delay_ms of $max_ms ms" >&2
  "$@" >/dev/null 2>&1 & local pid=$!
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
}

check() {
  local ms=$1
  $ms verify --quiet >"$work/out" 2>&1 || fail "$round" "verify: $(cat "$work/out")"
  $ms rebuild --json >"$work/out" 2>&1 || fail "$round" "rebuild: $(cat "$work/out")"
  grep -q '"dir_rebuilt":true' "$work/out" && fail "$round" "rebuild had work to do: $(cat "$work/out")"
  grep -q '"marker_written":true' "$work/out" && fail "$round" "rebuild wrote a marker: $(cat "$work/out")"
  return 0
}

# Sizes and durations: one clean throttled pull of each repo (the throttle is per request,
# so a pull's time depends on the connections; kills are spread over 1.2x the measured time).
now_ms() { date +%s%3N; }
set_faults "$throttle"
t0=$(now_ms)
$ms pull "$repo" --quiet
pull_ms=$(( ($(now_ms) - t0) * 12 / 10 + 50 ))
set_faults "$slow_versions"
t0=$(now_ms)
$msv pull "$vrepo" --revision v1 --quiet
update_ms=$(( ($(now_ms) - t0) * 12 / 10 + 50 ))
size=$(stat -c %s "$MODELSYNC_ROOT/models/$repo/model.safetensors")
size_guess=$(( size > 1 ? size : 2 ))
declare -a clean=() faulty=()
declare -A kills_by=()
summary() {
  local rounds=$1
  echo "rounds: $rounds (seed $seed, weights $size bytes, faults $( ((faults_on)) && echo on || echo off)); kills that hit a running operation: fresh ${kills_by[fresh]:-0}, update ${kills_by[update]:-0}, gc ${kills_by[gc]:-0}; all survived"
  for set in clean faulty; do
    local -n arr=$set
    (( ${#arr[@]} )) || continue
    printf '%s\n' "${arr[@]}" | sort -n | awk -v what="$set" '
    { v[NR] = $1; sum += $1 }
    END {
      i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1;
      label = what == "clean" ? "no fault" : "with a fault";
      printf "re-fetched bytes per killed fresh pull (%s, %d kills): mean %.0f, p99 %d, max %d\n", label, NR, sum / NR, v[i], v[NR];
    }'
  done
}
# Rounds run until KILLS kills have hit a running operation (at most 3 x KILLS rounds).
hits=0
round=0
while (( hits < kills && round < 3 * kills )); do
  round=$(( round + 1 ))
  curl -s -X POST "$hub/_emulator/reset" >/dev/null
  pick_fault
  op=fresh
  case $(( RANDOM % 10 )) in 7|8) op=update ;; 9) op=gc ;; esac
  case $op in
    fresh)
      $ms remove "$repo" >/dev/null || fail "$round" "remove failed"
      $ms gc >/dev/null || fail "$round" "gc failed"
      curl -s -X POST "$hub/_emulator/reset" >/dev/null
      set_faults "$throttle${fault_rule:+,$fault_rule}"
      run_and_kill "$pull_ms" $ms pull "$repo" --quiet
      $ms pull "$repo" --quiet >"$work/out" 2>&1 || fail "$round" "pull after kill: $(cat "$work/out")"
      got=$(cdn_bytes)
      if (( rc == 137 )); then
        if [ "$fault_name" = none ]; then clean+=( $(( got > size ? got - size : 0 )) ); else faulty+=( $(( got > size ? got - size : 0 )) ); fi
      fi
      ;;
    update)
      $msv pull "$vrepo" --revision v1 --quiet >"$work/out" 2>&1 || fail "$round" "pull v1: $(cat "$work/out")"
      set_faults "$slow_versions${fault_rule:+,$fault_rule}"
      run_and_kill "$update_ms" $msv pull "$vrepo" --quiet
      $msv pull "$vrepo" --quiet >"$work/out" 2>&1 || fail "$round" "update after kill: $(cat "$work/out")"
      ;;
    gc)
      $ms remove "$repo" >/dev/null || fail "$round" "remove failed"
      run_and_kill 60 $ms gc
      $ms gc >"$work/out" 2>&1 || fail "$round" "gc after kill: $(cat "$work/out")"
      [ -n "$fault_rule" ] && set_faults "$fault_rule"
      $ms pull "$repo" --quiet >"$work/out" 2>&1 || fail "$round" "pull after gc: $(cat "$work/out")"
      ;;
  esac
  [ -n "${SOAK_VERBOSE:-}" ] && echo "round $round: $op fault=$fault_name rc=$rc" >&2
  if (( rc == 137 )); then
    kills_by[$op]=$(( ${kills_by[$op]:-0} + 1 ))
    hits=$(( hits + 1 ))
  fi
  check "$ms"
  check "$msv"
  if (( round % 100 == 0 )); then summary "$round" >&2; fi
done
summary "$round"
(( hits >= kills )) || { echo "only $hits kills hit a running operation in $round rounds"; exit 1; }
