#!/usr/bin/env bash
# The exported surface of libmodelsync.so must be exactly capi/symbols.txt: an accidental
# export (or a removed call) fails the build's tests. A deliberate change updates the file
# (and MS_API_VERSION in include/modelsync/modelsync.h when a call changes meaning).
# Usage: tools/check_abi.sh path/to/libmodelsync.so
set -euo pipefail
so=${1:?usage: check_abi.sh libmodelsync.so}
here="$(cd "$(dirname "$0")/.." && pwd)"
actual=$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | grep -vx 'MODELSYNC_0' | sort)
if ! diff -u "$here/capi/symbols.txt" <(echo "$actual"); then
  echo "check_abi: the exported symbols of $so differ from capi/symbols.txt (above: - listed, + exported)" >&2
  exit 1
fi
echo "check_abi: ok ($(echo "$actual" | wc -l) symbols, all ms_*)"
