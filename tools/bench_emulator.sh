#!/usr/bin/env bash
# Serving rate of hub_emulator: one LFS file (default 1 GiB of tensor data) fetched from the
# CDN listener with `curl -o /dev/null`, several runs after a warm-up. Prints one line per run
# and a summary line. Usage: tools/bench_emulator.sh [BUILD_DIR] [SIZE] [RUNS]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
size=${2:-1GiB}
runs=${3:-5}
[ -x "$build/tools/emulator/hub_emulator" ] && [ -x "$build/tools/fixtures/make_fixtures" ] || {
  echo "build first: ninja -C $build hub_emulator make_fixtures" >&2; exit 2; }
work=$(mktemp -d /tmp/modelsync-bench-XXXXXX)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$build/tools/fixtures/make_fixtures" --out "$work/repos" --only model --weights-bytes "$size" >/dev/null
"$build/tools/emulator/hub_emulator" --repos "$work/repos" >"$work/ready" 2>"$work/stderr" &
pid=$!
for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.05; done
hub=$(sed -n 's/.*"hub":"\([^"]*\)".*/\1/p' "$work/ready")
[ -n "$hub" ] || { echo "emulator did not start: $(cat "$work/stderr")" >&2; exit 1; }
url=$(curl -sI "$hub/mlx-community/Tiny-Model-4bit/resolve/main/model.safetensors" |
      tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
echo "object: $url"
curl -s -o /dev/null "$url"   # warm the page cache
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
rates=()
for i in $(seq "$runs"); do
  line=$(curl -s -o /dev/null -w '%{size_download} %{time_total} %{speed_download}' "$url")
  read -r bytes secs bps <<<"$line"
  printf 'run %d: %d bytes in %.3f s = %.2f GB/s\n' "$i" "$bytes" "$secs" "$(echo "$bps/1000000000" | bc -l)"
  rates+=("$bps")
done
t1=$(ticks)
bytes_total=$(( $(stat -c %s "$(ls -S "$work"/repos/mlx-community/Tiny-Model-4bit/objects/* | head -1)") * runs ))
awk -v t=$((t1 - t0)) -v hz="$hz" -v b="$bytes_total" 'BEGIN {
  s = t / hz; printf "emulator CPU: %.2f s for %.2f GB served = %.2f GB/s per core of emulator CPU\n", s, b/1e9, (s > 0 ? b/1e9/s : 0) }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (curl and the emulator share them)"
printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR]=$1} END {printf "emulator CDN serving rate (curl -o /dev/null): median %.2f GB/s, best %.2f GB/s over %d runs\n", a[int((NR+1)/2)]/1e9, a[NR]/1e9, NR}'
src=$(cd "$(dirname "$0")/.." && pwd)
if [ -d "$build/js-deps/node_modules/@huggingface/hub" ] && command -v node >/dev/null; then
  node "$src/tests/js/bench_download.mjs" "$build/js-deps" "$hub" mlx-community/Tiny-Model-4bit model.safetensors
else
  echo "(@huggingface/hub comparison skipped: run the js_fidelity_test once to install it into $build/js-deps)"
fi
