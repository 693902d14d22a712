#!/usr/bin/env bash
# Fails when the engine reaches the world other than through its Env and base/platform.h
# (issue 14; docs/PLATFORM.md): under base/, proto/, storage/, net/ and engine/,
#  - getenv only in engine/env_config.cc (the Config is read in one place);
#  - a raw clock only in base/clock.{h,cc}; random_device only in engine/env_real.cc;
#  - RealFileSystem() only where it is defined and in engine/env_real.cc;
#  - no std::filesystem (paths below a root go through storage::Dir, never a symlink);
#  - the platform's own calls (renameat2, fallocate, OFD locks, ...) only in base/platform_*.cc;
#  - HTTP transfers (libcurl's easy and multi handles) only in net/curl_transport.cc and
#    net/curl_multi.*: everything else reaches the network through net::Transport (whose real
#    one also reads long ranges itself, in net/range_reader.cc: net/NET.md).
# And cli/ and capi/ (the C API) include only the engine's public headers (engine/PUBLIC).
# Comments are not counted. Usage: tools/check_env.sh (from anywhere); exit 1 on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
dirs=(base proto storage net engine)
fail=0
# check NAME REGEX ALLOWED-FILE-REGEX
check() {
  local what=$1 re=$2 allowed=$3 hits
  hits=$(grep -rnE --include='*.cc' --include='*.h' --include='*.inc' "$re" "${dirs[@]}" |
         grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' | grep -vE "^($allowed):" || true)
  if [ -n "$hits" ]; then
    echo "check_env: $what outside the Env / platform files:"
    echo "$hits" | sed 's/^/  /'
    fail=1
  fi
}
check "getenv" '\bgetenv\b|secure_getenv|\benviron\b' 'engine/env_config\.cc'
check "a raw clock" 'steady_clock|system_clock|high_resolution_clock|\bgettimeofday\b|clock_gettime|\btime\(nullptr\)' 'base/clock\.(h|cc)'
check "random_device" 'random_device|\brand\(\)|\bsrand\b|getrandom' 'engine/env_real\.cc'
check "RealFileSystem()" 'RealFileSystem\(\)' 'storage/file_system\.(h|cc)|engine/env_real\.cc'
check "std::filesystem" 'std::filesystem|<filesystem>' 'NONE'
check "a platform call" 'renameat2[[:space:]]*\(|fallocate[[:space:]]*\(|sync_file_range[[:space:]]*\(|\bsyncfs[[:space:]]*\(|posix_fadvise[[:space:]]*\(|F_OFD_|\baccept4[[:space:]]*\(|SOCK_CLOEXEC|SOCK_NONBLOCK|\bpipe2[[:space:]]*\(|\bdup3[[:space:]]*\(|\bFICLONE\b|\bflock[[:space:]]*\(|<linux/|<sys/vfs\.h>|fstatfs[[:space:]]*\(' 'base/platform_(linux|posix)\.cc'
check "a libcurl transfer" 'curl_easy_|curl_multi_|CURLOPT_|CURLINFO_|CURLM' 'net/curl_(transport|multi)\.(h|cc)'
# cli/ is a client of the engine's public headers only (engine/PUBLIC), never of storage/,
# net/ or the log's protobuf types in proto/ (the dependency direction of DESIGN.md; the build
# enforces the first two too).
public=$(grep -vE '^[[:space:]]*(#|$)' engine/PUBLIC | sed 's/^/engine\//')
public_files=$(echo "$public" | tr '\n' ' ')
# shellcheck disable=SC2086
bad=$(grep -hoE '#include "(engine|storage|net|proto)/[^"]+"' cli/*.cc cli/*.h capi/*.cc capi/*.h $public_files | sed 's/#include "//; s/"$//' |
      sort -u | while read -r h; do
        case "$h" in engine/*) echo "$public" | grep -qx "$h" || echo "$h" ;; *) echo "$h" ;; esac
      done)
if [ -n "$bad" ]; then
  echo "check_env: cli/ or capi/ (or a public engine header) includes headers that are not the engine's public ones (engine/PUBLIC):"
  echo "$bad" | sed 's/^/  /'
  fail=1
fi
if [ "$fail" -ne 0 ]; then
  echo "check_env: reach the world through engine::Env (engine/env.h) or base/platform.h"
  exit 1
fi
echo "check_env: ok (getenv, clocks, randomness, the real file system, platform calls and HTTP transfers are behind the Env)"
