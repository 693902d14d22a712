#!/usr/bin/env bash
# What a verified cold pull of one file cannot cost less than on this machine (issue 20's
# "<= 1.1 CPU-s per GiB"), next to modelsync's own cold pull, in the same run, alternating:
#
#   tools/bench/floor.sh [--rounds 5] [--size 1GiB] [--build DIR]
#
# Each probe is tools/bench/floor.c (built here with cc): the hashing alone (OpenSSL SHA-256,
# what verifying costs), and the network with the hashing beside it: libcurl's multi
# interface as modelsync uses it (8 connections, 4 MiB ranges, 512 KiB buffers) dropping the
# bytes, copying them (memcpy) or streaming them (as base/copy.h) into a 32 MiB ring; plain
# sockets receiving into a buffer (dropped, or copied into the ring) or straight into the
# ring. None of them writes to disk, keeps a log or checks a byte: floors, not peers. Needs
# build-release (tools/build.sh --release modelsync hub_emulator make_fixtures). Prints one
# line per probe: median CPU-s (user+sys), CPU-s per GiB, median wall. An idle machine, as
# for tools/bench/run.sh.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build="$src/build-release" rounds=5 size=1GiB
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
for b in cli/modelsync tools/emulator/hub_emulator tools/fixtures/make_fixtures; do
  [ -x "$build/$b" ] || { echo "no $build/$b: run tools/build.sh --release modelsync hub_emulator make_fixtures" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "needs GNU time (apt-get install time)" >&2; exit 2; }
work="$build/floor-work"
rm -rf "$work"; mkdir -p "$work"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cc -O2 -o "$work/floor" "$src/tools/bench/floor.c" -lcurl -lcrypto -lpthread
"$build/tools/fixtures/make_fixtures" --out "$work/repos" --weights-bytes "$size" --only model >/dev/null
"$build/tools/emulator/hub_emulator" --repos "$work/repos" >"$work/ready" 2>"$work/emulator.log" &
pid=$!
for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
hub=$(sed -n 's/.*"hub":"\([^"]*\)".*/\1/p' "$work/ready")
[ -n "$hub" ] || { echo "emulator did not start: $(cat "$work/emulator.log")" >&2; exit 1; }
model=mlx-community/Tiny-Model-4bit
url=$(curl -sfI "$hub/$model/resolve/main/model.safetensors" | sed -n 's/^[Ll]ocation: *//p' | tr -d '\r')
bytes=$(curl -sf "$hub/api/models/$model/tree/main" | jq '.[] | select(.path=="model.safetensors") | .size')
[ -n "$url" ] && [ -n "$bytes" ] || { echo "the emulator did not resolve $model" >&2; exit 1; }
curl -sf "$url" -o /dev/null  # the served file into the page cache, as for every tool after

probes=("sha256 alone|none drop 0" "curl drop + sha256|curl drop 8" "curl stream + sha256|curl stream 8"
        "curl copy + sha256|curl copy 8" "raw drop + sha256|raw drop 8"
        "raw direct + sha256|raw direct 8" "raw copy + sha256|raw copy 8")
out="$work/results"
: >"$out"
for r in $(seq "$rounds"); do
  rm -rf "$work/root"; sync
  /usr/bin/time -f "%U %S %e" -o "$work/time" "$build/cli/modelsync" pull "$model" \
    --root "$work/root" --endpoint "$hub" --quiet >/dev/null
  read -r u s e <"$work/time"
  echo "modelsync pull|$(awk "BEGIN { print $u + $s }") $e" >>"$out"
  for p in "${probes[@]}"; do
    name=${p%%|*}; args=${p#*|}
    # shellcheck disable=SC2086
    echo "$name|$("$work/floor" "$url" "$bytes" $args --hash)" >>"$out"
  done
  echo "curl drop, no hash|$("$work/floor" "$url" "$bytes" curl drop 8)" >>"$out"
  echo "round $r of $rounds done" >&2
done
python3 - "$out" "$bytes" <<'EOF'
import statistics, sys
rows, order = {}, []
for line in open(sys.argv[1]):
    name, figures = line.rstrip("\n").split("|")
    cpu, wall = map(float, figures.split())
    if name not in rows:
        order.append(name)
    rows.setdefault(name, []).append((cpu, wall))
gib = int(sys.argv[2]) / 2**30
print(f"{'probe':28} {'CPU s':>7} {'CPU s/GiB':>10} {'wall s':>7}   (medians of {len(rows[order[0]])})")
for name in order:
    cpu = statistics.median(c for c, _ in rows[name])
    wall = statistics.median(w for _, w in rows[name])
    print(f"{name:28} {cpu:7.3f} {cpu / gib:10.3f} {wall:7.3f}")
EOF
