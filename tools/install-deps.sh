#!/usr/bin/env bash
# Installs every Debian 12 package modelsync needs to build, test and run its demo.
# Idempotent; run as root (or through sudo). Safe to run on a fresh machine.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config git
  liblmdb-dev libcurl4-openssl-dev protobuf-compiler libprotobuf-dev
  libboost-dev libboost-system-dev libzstd-dev libssl-dev zlib1g-dev
  doctest-dev nlohmann-json3-dev libcli11-dev
  clang libclang-rt-14-dev lld curl
  btrfs-progs python3 python3-jsonschema help2man systemd openssl nginx tinyproxy-bin
  python3-venv util-linux python3-torch
)
# python3-torch (Debian's PyTorch 1.13 for /usr/bin/python3, ~150 MB to fetch; PyPI's wheels
# pull in CUDA): convert_torch_test writes its .bin fixtures with real torch.save and judges
# the converter's output against torch.load.
# lld: the linker of every build (CMakeLists.txt, MODELSYNC_LLD), several times faster than ld.
# python3-venv: tools/setup-venv.sh makes .venv (the Python package's tests); util-linux:
# unshare (the full-disk tests mount a tmpfs in a private mount namespace).
# nginx, tinyproxy-bin: network_test puts real ones in front of the emulator (TLS, HTTP/2, a
# CONNECT proxy with and without credentials, the deploy/nginx cache); each is started by the
# test on a free loopback port and stopped by its pid. Their packaged services are not
# started at install (policy-rc.d below).
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
  # Installing nginx or tinyproxy must not start a system service (on :80, :8888): deny
  # service starts for the duration of the install, unless the machine already does.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$made_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
fi
