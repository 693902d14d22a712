#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and runs each for a
# bounded time on a copy of its committed corpus (tools/fuzz/corpus/<name>/). Fails on any
# crash, leak, timeout, out-of-memory or broken invariant, printing the reproducer.
# Usage: tools/fuzz/run.sh [SECONDS_PER_TARGET (default 20)] [TARGET...]
#   e.g. tools/fuzz/run.sh 300 fuzz_event        (targets: see ALL below)
# Environment: FUZZ_KEEP=DIR keeps the grown corpora and logs in DIR (default: a temp dir,
# deleted on success). The repo's corpus is never written to.
set -euo pipefail
cd "$(dirname "$0")/../.."
ALL=(fuzz_safetensors fuzz_gguf fuzz_hub_json fuzz_tree_listing fuzz_hub_headers fuzz_event fuzz_record
  fuzz_snapshot fuzz_torch)
secs=${1:-20}
shift || true
targets=("$@")
((${#targets[@]})) || targets=("${ALL[@]}")
jobs=$(nproc 2>/dev/null || echo 2)

if ! command -v clang++ >/dev/null; then
  echo "fuzz: clang++ is not installed: run tools/install-deps.sh (clang, libclang-rt-14-dev)" >&2
  exit 1
fi
# Optimised, with line tables only (reports still name file and line), in unity batches like
# the other builds: the build here 64 -> 49 s.
cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_UNITY_BUILD=ON \
  -DMODELSYNC_FUZZ=ON -DMODELSYNC_SANITIZE=ON -DMODELSYNC_WERROR=ON >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzz

work=${FUZZ_KEEP:-$(mktemp -d)}
mkdir -p "$work"
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# One target: its corpus copy, its run, its one-line summary ($work/<name>/summary) and, on a
# crash, its report ($work/<name>/failed). Targets run $jobs at a time (each is one process
# on one core), so the fuzzing time per target stays what was asked and the wall time halves
# on two cores.
fuzz_one() {
  local t=$1 name=${1#fuzz_}
  local bin=build-fuzz/tools/fuzz/$t seeds=tools/fuzz/corpus/${1#fuzz_}
  local corpus=$work/$name/corpus artifacts=$work/$name/artifacts log=$work/$name/log
  rm -rf "$work/$name"
  mkdir -p "$corpus" "$artifacts"
  cp -r "$seeds/." "$corpus/"
  local dict=()
  case $name in safetensors | hub_json | tree_listing) dict=(-dict=tools/fuzz/json.dict) ;; esac
  echo "fuzz: $t for ${secs}s ($(ls "$corpus" | wc -l) seeds)"
  local rc=0
  "$bin" "$corpus" "${dict[@]}" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -max_len=65536 -artifact_prefix="$artifacts/" -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  local execs rate crashes
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  crashes=$(find "$artifacts" -type f | wc -l)
  printf '%-18s %6ss %12s execs %8s/s %5s inputs  %s crashes\n' "$t" "$secs" \
    "${execs:-?}" "${rate:-?}" "$(ls "$corpus" | wc -l)" "$crashes" >"$work/$name/summary"
  if ((rc != 0 || crashes != 0)); then
    {
      echo "fuzz: $t FAILED (exit $rc); last lines of $log:"
      tail -n 40 "$log"
      for a in "$artifacts"/*; do
        [ -e "$a" ] || continue
        echo "fuzz: reproducer $a: run   $bin $a"
      done
    } >"$work/$name/failed"
  fi
}

for t in "${targets[@]}"; do
  [ -x "build-fuzz/tools/fuzz/$t" ] || { echo "fuzz: no target $t" >&2; exit 2; }
  [ -d "tools/fuzz/corpus/${t#fuzz_}" ] || { echo "fuzz: no corpus tools/fuzz/corpus/${t#fuzz_}" >&2; exit 2; }
done
running=0
for t in "${targets[@]}"; do
  if ((running >= jobs)); then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait || true
failed=()
summary=()
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  summary+=("$(cat "$work/$name/summary" 2>/dev/null || echo "$t: no summary (the run did not finish)")")
  if [ -e "$work/$name/failed" ] || [ ! -e "$work/$name/summary" ]; then
    failed+=("$t")
    cat "$work/$name/failed" >&2 2>/dev/null || true
  fi
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]} (work dir kept: $work)" >&2
  exit 1
fi
[ -n "${FUZZ_KEEP:-}" ] || rm -rf "$work"
echo "fuzz: all ${#targets[@]} targets ran ${secs}s each with no crash"
