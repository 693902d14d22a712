#!/usr/bin/env bash
# Benchmark: modelsync's hub client vs `curl -o /dev/null` on one large LFS file served by the
# hub emulator's CDN listener, alternating in one run, plus the ratio.
# Usage: tools/bench_net.sh [SIZE=1GiB] [ROUNDS=5]   (build dir: $BUILD, default build-release/:
#   tools/build.sh --release makes it)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1GiB}
rounds=${2:-5}
build=${BUILD:-build-release}
if [ "$build" = build-release ]; then bash tools/build.sh --release hub_emulator make_fixtures bench_net >/dev/null
else ninja -C "$build" hub_emulator make_fixtures bench_net >/dev/null; fi
dir=$(mktemp -d)
trap 'kill "${emu_pid:-0}" 2>/dev/null || true; rm -rf "$dir"' EXIT
"$build"/tools/fixtures/make_fixtures --out "$dir/repos" --weights-bytes "$size" --only model >/dev/null
"$build"/tools/emulator/hub_emulator --repos "$dir/repos" >"$dir/ready" &
emu_pid=$!
for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
hub=$(sed -n 's/.*"hub":"\([^"]*\)".*/\1/p' "$dir/ready")
"$build"/tools/bench_net --endpoint "$hub" --repo mlx-community/Tiny-Model-4bit \
  --path model.safetensors --rounds "$rounds"
