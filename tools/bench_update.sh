#!/usr/bin/env bash
# Benchmark: update of fixtures/versions (v1 -> v2: README.md and tokenizer_config.json
# changed, generation_config.json added, notes.txt removed, the weights unchanged) with a
# large weight file, against the hub emulator. Prints the file bytes and API bytes the update
# moved (emulator stats), its wall time, and the no-op pull's requests and time.
# Usage: tools/bench_update.sh [WEIGHTS=1GiB]   (build dir: $BUILD, default build-release/:
#   tools/build.sh --release makes it)
# Targets (issue 5): update bytes <= changed bytes + 64 KiB of API traffic, update <= 0.5 s,
# no-op pull = 1 request.
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1GiB}
build=${BUILD:-build-release}
if [ "$build" = build-release ]; then bash tools/build.sh --release hub_emulator make_fixtures modelsync >/dev/null
else ninja -C "$build" -j2 hub_emulator make_fixtures modelsync >/dev/null; fi
dir=$(mktemp -d)
trap 'kill "${emu_pid:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$build"/tools/fixtures/make_fixtures --out "$dir/repos" --weights-bytes "$size" --only versions >/dev/null
"$build"/tools/emulator/hub_emulator --repos "$dir/repos" >"$dir/ready" &
emu_pid=$!
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
hub=$(sed -n 's/.*"hub":"\([^"]*\)".*/\1/p' "$dir/ready")
export MODELSYNC_ROOT="$dir/root" HF_ENDPOINT="$hub" HF_HOME="$dir/hf"
unset HF_HUB_OFFLINE HF_TOKEN
ms=$build/cli/modelsync
repo=fixtures/versions
now_ms() { date +%s%3N; }
stats() { curl -s "$hub/_emulator/stats"; }
reset() { curl -s -X POST "$hub/_emulator/reset" >/dev/null; }

t0=$(now_ms); "$ms" pull "$repo" --revision v1 --quiet; t1=$(now_ms)
echo "initial pull of v1 ($size weights): $((t1 - t0)) ms"
changed=$("$ms" diff "$repo" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fetch_bytes"])')
reset
t0=$(now_ms); "$ms" pull "$repo" --quiet; t1=$(now_ms)
stats | python3 -c '
import json, sys
s = json.load(sys.stdin); changed = int(sys.argv[1]); wall = int(sys.argv[2])
files = sum(c["body_bytes"] for p, per in s["paths"].items() if not p.startswith("/api/") for c in per.values())
api = sum(c["body_bytes"] for p, per in s["paths"].items() if p.startswith("/api/") for c in per.values())
weights = sum(c["body_bytes"] for p, per in s["paths"].items() if "safetensors" in p and not p.startswith("/api/") for c in per.values())
reqs = s["hub"]["requests"] + s["cdn"]["requests"]
ok = files + api <= changed + 65536 and files == changed
verdict = "OK" if ok else "OVER"
print(f"update v1 -> v2: wall {wall} ms (target <= 500), requests {reqs}, file bytes {files} "
      f"(changed content {changed}), weights bytes {weights}, API bytes {api}; "
      f"bytes {verdict} (limit changed + 65536 = {changed + 65536})")
' "$changed" "$((t1 - t0))"
reset
t0=$(now_ms); "$ms" pull "$repo" --quiet; t1=$(now_ms)
stats | python3 -c '
import json, sys
s = json.load(sys.stdin)
hub, cdn = s["hub"]["requests"], s["cdn"]["requests"]
print(f"no-op pull: wall {sys.argv[1]} ms, hub requests {hub}, cdn requests {cdn}")
' "$((t1 - t0))"
