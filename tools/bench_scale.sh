#!/usr/bin/env bash
# Benchmark: CPU per file of pull, status, verify and log on fixtures/many-files at two sizes
# (default 600 and 20000 files), against the hub emulator. Prints wall and CPU seconds
# (user+sys), peak RSS, the log's size per file, and the per-file ratio of the large run to
# the small one: a ratio near 1 means no quadratic step (issues 20 and 21; targets: within
# 3x, peak RSS <= 128 MiB).
# Usage: tools/bench_scale.sh [SMALL=600] [LARGE=20000]   (build dir: $BUILD, default build-release/:
#   tools/build.sh --release makes it)
set -euo pipefail
cd "$(dirname "$0")/.."
small=${1:-600}
large=${2:-20000}
build=${BUILD:-build-release}
if [ "$build" = build-release ]; then bash tools/build.sh --release hub_emulator make_fixtures modelsync >/dev/null
else ninja -C "$build" -j2 hub_emulator make_fixtures modelsync >/dev/null; fi
ms=$build/cli/modelsync
cpu() {  # runs "$@", prints user+sys CPU seconds; wall s and peak RSS KiB go to $dir/last
  /usr/bin/time -f '%e %U %S %M' -o "$dir/time" "$@" >/dev/null 2>&1
  read -r wall u s rss <"$dir/time"
  echo "$wall $rss" >"$dir/last"
  awk -v u="$u" -v s="$s" 'BEGIN { printf "%.3f", u + s }'
}
declare -A per perwall
# Each size's directory is removed only at the end (or on a failure, with its emulator): on a
# file system whose inode allocator skips recently freed inodes after reading each one (ext4
# without a journal, this VM's), removing the small run's files just before the large run
# would make every file the large run creates pay for scanning them.
dirs=() emu=""
cleanup() { [ -z "$emu" ] || kill "$emu" 2>/dev/null || true; rm -rf "${dirs[@]}"; }
trap cleanup EXIT
for n in "$small" "$large"; do
  dir=$(mktemp -d); dirs+=("$dir")
  "$build"/tools/fixtures/make_fixtures --out "$dir/repos" --small-files "$n" --only many-files >/dev/null
  "$build"/tools/emulator/hub_emulator --repos "$dir/repos" >"$dir/ready" &
  emu=$!
  for _ in $(seq 100); do [ -s "$dir/ready" ] && break; sleep 0.1; done
  hub=$(sed -n 's/.*"hub":"\([^"]*\)".*/\1/p' "$dir/ready")
  export MODELSYNC_ROOT="$dir/root" HF_ENDPOINT="$hub" HF_HOME="$dir/hf"
  unset HF_HUB_OFFLINE HF_TOKEN
  for cmd in pull status verify log; do
    case $cmd in
      pull) c=$(cpu "$ms" pull fixtures/many-files --quiet) ;;
      status) c=$(cpu "$ms" status) ;;
      verify) c=$(cpu "$ms" verify) ;;
      log) c=$(cpu "$ms" log) ;;
    esac
    per[$cmd,$n]=$(awk -v c="$c" -v n="$n" 'BEGIN { printf "%.6f", c / n }')
    read -r wall rss <"$dir/last"
    perwall[$cmd,$n]=$(awk -v c="$wall" -v n="$n" 'BEGIN { printf "%.9f", c / n }')
    printf '%-7s %6d files: %7.3f CPU-s, %7.1f us/file, wall %6.2f s, peak RSS %6.1f MiB\n' \
      "$cmd" "$n" "$c" "$(awk -v c="$c" -v n="$n" 'BEGIN { print c / n * 1e6 }')" "$wall" \
      "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')"
  done
  echo "log size: $(du -sb "$dir/root/.modelsync/log" | cut -f1) bytes for $n files" \
       "($(du -sb "$dir/root/.modelsync/log" | awk -v n="$n" '{ printf "%.0f", $1 / n }') B/file)"
  kill "$emu"; wait "$emu" 2>/dev/null || true; emu=""
done
for cmd in pull status verify log; do
  awk -v a="${per[$cmd,$small]}" -v b="${per[$cmd,$large]}" -v c="$cmd" -v s="$small" -v l="$large" \
    'BEGIN { printf "%-7s per-file CPU at %d files / at %d files: %s", c, l, s, (a > 0 ? sprintf("%.2fx", b / a) : "n/a (below the 10 ms timer)") }'
  awk -v a="${perwall[$cmd,$small]}" -v b="${perwall[$cmd,$large]}" \
    'BEGIN { printf "; per-file wall: %s\n", (a > 0 ? sprintf("%.2fx", b / a) : "n/a") }'
done
