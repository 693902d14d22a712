#!/usr/bin/env bash
# Regenerates the seed corpora under tools/fuzz/corpus/ (committed; see README.md):
#   - event/, record/, snapshot/: fuzz_seeds (the real encoders) from the fuzz build;
#   - hub_json/, tree_listing/, hub_headers/: real answers of the hub emulator serving the
#     standard fixtures (revision info, tree pages with Link headers, error bodies, ETag /
#     X-Linked-Etag / Location headers), prefixed with each target's mode byte.
# safetensors/ is hand-made and left alone; gguf/ is written by make_gguf_seeds.py (llama.cpp's
# own `gguf` writer, from .venv).
# Usage: tools/fuzz/make_corpus.sh [BUILD_DIR (hub_emulator, make_fixtures; default build)]
#        [FUZZ_BUILD_DIR (fuzz_seeds; default build-fuzz)]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
fuzz_build=${2:-build-fuzz}
out=tools/fuzz/corpus
tmp=$(mktemp -d)
emu_pid=""
cleanup() {
  [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

rm -rf "$out/event" "$out/record" "$out/snapshot" "$out/hub_json" "$out/tree_listing" \
  "$out/hub_headers"
"$fuzz_build/tools/fuzz/fuzz_seeds" "$out"
mkdir -p "$out/hub_json" "$out/tree_listing" "$out/hub_headers"

"$build/tools/fixtures/make_fixtures" --out "$tmp/repos" --weights-bytes 4KiB --gguf-bytes 4KiB \
  --small-files 30 >/dev/null
"$build/tools/emulator/hub_emulator" --repos "$tmp/repos" --page-size 7 --token hf_seed \
  >"$tmp/urls" &
emu_pid=$!
for _ in $(seq 100); do [ -s "$tmp/urls" ] && break; sleep 0.1; done
hub=$(sed -n 's/.*"hub":"\([^"]*\)".*/\1/p' "$tmp/urls")

# put FILE MODE_BYTE_OCTAL: stdin prefixed with the mode byte.
put() { { printf "\\$2"; cat; } >"$1"; }
api="$hub/api/models"
for repo in mlx-community/Tiny-Model-4bit fixtures/versions fixtures/Tiny-GGUF; do
  n=${repo//\//_}
  curl -s "$api/$repo/revision/main" | put "$out/hub_json/rev_$n" 000
  curl -s "$api/$repo/tree/main?recursive=true&expand=false" >"$out/tree_listing/page1_$n"
  curl -s -D - -o /dev/null "$api/$repo/tree/main?recursive=true&expand=false" |
    sed -n 's/^[Ll]ink: //p' | tr -d '\r' | put "$out/hub_headers/link_$n" 001
done
curl -s "$api/fixtures/many-files/tree/main?recursive=true&expand=true" \
  >"$out/tree_listing/page1_many_files_expand"
curl -s "$api/fixtures/hostile-paths/tree/main?recursive=true" >"$out/tree_listing/hostile_paths"
curl -s "$api/fixtures/many-files/tree/main?recursive=true&cursor=o7" \
  >"$out/tree_listing/page2_many_files"
# Errors: [mode 1][status][code index][2-byte message length][message][body].
err() { # FILE STATUS_OCTAL CODE_OCTAL URL
  curl -s "$4" | { printf "\\001\\$2\\$3\\000\\000"; cat; } >"$out/hub_json/$1"
}
err err_repo_not_found 020 004 "$api/fixtures/nope/revision/main"
err err_revision_not_found 020 002 "$api/fixtures/versions/revision/no-such-branch"
err err_gated 003 001 "$api/fixtures/gated-model/revision/main"
err err_entry_not_found 020 003 \
  "$hub/mlx-community/Tiny-Model-4bit/resolve/main/no-such-file.json"
printf 'hf_seed' | { printf '\002\007\000'; cat; printf 'token hf_seed in hf_seedhf_seed'; } \
  >"$out/hub_json/scrub"
# Headers of a resolve: ETag, X-Linked-Etag, Location.
heads=$(curl -s -I "$hub/mlx-community/Tiny-Model-4bit/resolve/main/model.safetensors" | tr -d '\r')
printf '%s' "$(sed -n 's/^[Xx]-[Ll]inked-[Ee]tag: //p' <<<"$heads")" | put "$out/hub_headers/etag_lfs" 000
printf '%s' "$(sed -n 's/^[Ee][Tt]ag: //p' <<<"$heads")" | put "$out/hub_headers/etag" 000
printf 'W/"ABCdef0123"' | put "$out/hub_headers/etag_weak" 000
printf '%s' "$hub/api/models/org/name/tree/main?recursive=true&cursor=o7" |
  put "$out/hub_headers/url" 002
loc=$(sed -n 's/^[Ll]ocation: //p' <<<"$heads")
base="$hub/mlx-community/Tiny-Model-4bit/resolve/main/model.safetensors"
{ printf '\003'; printf "\\$(printf %03o $((${#base} & 255)))\\$(printf %03o $((${#base} >> 8)))";
  printf '%s%s' "$base" "$loc"; } >"$out/hub_headers/location"
{ printf '\003\017\000https://h.co/a/b'; printf '/api/resolve-cache/models/o/n/c/f?x=%%22y%%22'; } \
  >"$out/hub_headers/location_relative"
printf 'sub dir/ü/tokenizer.json?#' | put "$out/hub_headers/percent" 004
printf '\001\004\000"abc"\000\004\000"def"\001\000\000' | put "$out/hub_headers/get" 005
# Response heads as the range reader reads them (net/http1.h): the hub's 302 and the CDN's
# 206 to a range request, and one with every framing it refuses or hands to libcurl.
range='Range: bytes=0-1048575'
curl -s -D - -o /dev/null -H "$range" "$hub/mlx-community/Tiny-Model-4bit/resolve/main/model.safetensors" |
  put "$out/hub_headers/head_302" 006
curl -s -D - -o /dev/null -H "$range" "$loc" | put "$out/hub_headers/head_206" 006
printf 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, Upgrade\r\nContent-Length: 5\r\ncontent-length: 06\r\n : x\r\n' |
  put "$out/hub_headers/head_framing" 006
ls "$out"/* | wc -l
du -sh "$out"
