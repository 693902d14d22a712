#!/usr/bin/env bash
# Generates what `cmake --install` installs beside the binary, from the binary itself:
# shell completions (bash, zsh, fish) and the man page (help2man, over every command's help).
# usage: gen_extras.sh MODELSYNC_BINARY OUT_DIR
set -euo pipefail
bin=$1
out=$2
mkdir -p "$out"
"$bin" completion bash >"$out/modelsync.bash"
"$bin" completion zsh >"$out/_modelsync"
"$bin" completion fish >"$out/modelsync.fish"
if ! command -v help2man >/dev/null; then
  echo "gen_extras: help2man not found: no man page (tools/install-deps.sh installs it)" >&2
  rm -f "$out/modelsync.1"
  exit 0
fi
# Every command's help, as its own subsection of COMMANDS.
inc="$out/modelsync.h2m"
{
  echo "[COMMANDS]"
  for cmd in $("$bin" completion bash | sed -n "s/^    \([a-z-]*\)\(|[a-z-]*\)*)$/\1/p"); do
    echo ".SS $cmd"
    echo ".nf"
    "$bin" help "$cmd" | sed -e 's/\\/\\e/g' -e 's/^\([.'"'"']\)/\\\&\1/'
    echo ".fi"
  done
  echo "[ENVIRONMENT]"
  echo "MODELSYNC_ROOT, HF_ENDPOINT, HF_TOKEN, HF_TOKEN_PATH, HF_HOME, HF_HUB_OFFLINE,"
  echo "HF_HUB_DISABLE_PROGRESS_BARS, MODELSYNC_CHUNK_BYTES, MODELSYNC_STALL_TIMEOUT:"
  echo "see the README."
  echo "[EXIT STATUS]"
  echo "0 ok, 1 other failure, 2 bad argument, 3 damaged data, 4 root in use (--no-wait),"
  echo "5 written by a newer modelsync, 6 no space, 7 network, 8 not found or not authorized,"
  echo "130/143 interrupted by SIGINT/SIGTERM (what was fetched is kept)."
} >"$inc"
help2man --no-info --no-discard-stderr --section=1 \
  --name="keep model repositories from a Hugging Face hub complete, verified and current" \
  --include="$inc" --output="$out/modelsync.1" "$bin"
