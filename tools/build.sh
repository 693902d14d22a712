#!/usr/bin/env bash
# Configures and builds modelsync into build/ (GCC, linux platform file: the tree the demo and
# the suite use), or build-release/ with --release (fully optimised: what to install and
# measure), or build-san/ with --sanitize (clang, AddressSanitizer + UBSan on the portable
# platform file, base/platform_posix.cc: CI runs the whole suite once per platform,
# docs/PLATFORM.md), or build-posix/ with --posix (the portable file without sanitizers,
# unoptimised, for a quick local run).
# Usage: tools/build.sh [--release [TARGET...] | --sanitize | --posix [TARGET...]]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
# Every build is a unity build: CMake compiles each target's files in batches of 8 per
# translation unit, so the heavy headers (nlohmann/json, CLI11, Boost, doctest) are parsed and
# their templates instantiated once per batch instead of once per file (a clean normal build
# here: 383 -> 232 s). Names in anonymous namespaces must therefore differ between the files
# of a target; the few files that cannot share a unit say so in their CMakeLists.txt.
unity=(-DCMAKE_UNITY_BUILD=ON)
# The normal build: -O1, with line tables only (-g1: backtraces and perf still name files and
# lines; full -g made each file ~27 % slower to compile, cli/cmd_gc.cc 11.2 -> 8.2 s). -O1
# rather than -O2: a clean build 196 -> 155 s here, the suite as fast (82-98 s against
# 82-85 s, user CPU 112-122 s against 112-115 s; the hashing is OpenSSL's either way).
# --release is what to install and benchmark.
# The doctest executables' own code at -O0: their compile time 215 -> 133 CPU-s, the suite's
# run time unchanged (138 s).
# The micro-benchmarks are compiled by the ASan and release builds only (MODELSYNC_BENCH_TOOLS).
extra=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" -DMODELSYNC_TEST_OPTIONS=-O0
  -DMODELSYNC_BENCH_TOOLS=OFF)
targets=()
werror=ON
case "${1:-}" in
  --release)
    dir=build-release
    # CMake's Release flags (-O3 -DNDEBUG) for everything, tests included. Warnings stay
    # warnings here: at -O3 GCC 12 reports ten false -Wrestrict, -Wstringop-overflow and
    # -Warray-bounds inside libstdc++'s std::string code (GCC bug 105329 and its kin); the
    # other builds stop on every warning.
    werror=OFF
    extra=(-DCMAKE_BUILD_TYPE=Release)
    shift
    for t in "$@"; do targets+=(--target "$t"); done ;;
  --sanitize)
    dir=build-san
    # Built by clang (the normal build is GCC's, so both compilers' warnings stop the build):
    # clang compiles this unoptimised, instrumented tree faster (a clean build here
    # 264 -> 174 s); its suite takes about as long as GCC's did (219-224 s in CI, 226 before).
    # Line tables only (-g1): sanitizer reports still name file and line.
    extra=(-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DMODELSYNC_SANITIZE=ON
      -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DMODELSYNC_PLATFORM=posix) ;;
  --posix)
    dir=build-posix
    # Unoptimised and without debug info: -O0 compiles about twice as fast (assertions on).
    extra=(-DMODELSYNC_PLATFORM=posix -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O0)
    shift
    for t in "$@"; do targets+=(--target "$t"); done ;;
esac
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$dir" -G Ninja -DMODELSYNC_WERROR=$werror "${unity[@]}" "${extra[@]}" >/dev/null
cmake --build "$dir" -j "$jobs" "${targets[@]}"
