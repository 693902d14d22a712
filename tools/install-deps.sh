#!/usr/bin/env bash
# Installs every Debian 12 package modelsync needs to build, test and run its demo.
# Idempotent; run as root (or through sudo). Safe to run on a fresh machine.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config git
  liblmdb-dev libcurl4-openssl-dev protobuf-compiler libprotobuf-dev
  libboost-dev libboost-system-dev libzstd-dev libssl-dev zlib1g-dev
  doctest-dev nlohmann-json3-dev libcli11-dev
  clang libclang-rt-14-dev curl
  btrfs-progs python3 python3-jsonschema help2man systemd openssl
)
# openssl: the TLS test's certificates and its server (openssl s_server, cli_test).
# help2man: the man page `cmake --install` installs (tools/gen_extras.sh); systemd: its
# systemd-analyze checks the installed user unit (cli_test).
# python3-jsonschema: tools/check_json.py validates every command's --json (json_contract_test).
# btrfs-progs: the reflink test formats a small btrfs image on a loop device (marker_truth_test).
missing=()
# Node.js + npm run the @huggingface/hub fidelity test (ctest label js). Any node >= 18 works;
# only install Debian's when no node is on PATH (e.g. a NodeSource build is kept as is).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then pkgs+=(nodejs npm); fi
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
