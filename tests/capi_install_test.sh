#!/usr/bin/env bash
# `cmake --install` puts the C API where a C program finds it through pkg-config: the header,
# libmodelsync.so (linked and run) and the bundled libmodelsync.a (linked statically with
# `pkg-config --static`, run). Usage: capi_install_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: capi_install_test.sh BUILD_DIR}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" >/dev/null
libdir=$(dirname "$(find "$work/prefix" -name modelsync.pc | head -1)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig"
test -f "$work/prefix/include/modelsync/modelsync.h"
cat >"$work/app.c" <<'C'
#include <modelsync/modelsync.h>
#include <stdio.h>
#include <string.h>
int main(void) {
  ms_config* c = NULL;
  ms_root* r = NULL;
  char* json = NULL;
  if (ms_config_new(0, &c) != MS_OK || ms_root_open("/nonexistent-root", c, &r) != MS_OK) return 1;
  if (ms_ls_json(r, &json) != MS_OK || strstr(json, "\"models\":[]") == NULL) return 2;
  if (ms_config_set(c, MS_OPT_ENDPOINT, "not a url") != MS_ERR_INVALID_ARGUMENT) return 3;
  printf("%s %s\n", ms_version(), ms_last_error_kind());
  ms_free(json);
  ms_root_close(r);
  ms_config_free(c);
  return strcmp(ms_version(), MS_VERSION_STRING) == 0 ? 0 : 4;
}
C
# shellcheck disable=SC2046
cc -std=c99 -Wall -Werror -o "$work/app-shared" "$work/app.c" $(pkg-config --cflags --libs modelsync)
out=$(LD_LIBRARY_PATH="$libdir" "$work/app-shared")
[ "$out" = "$(pkg-config --modversion modelsync) InvalidArgument" ] || { echo "shared: $out"; exit 1; }
# The archive holds all of modelsync; the system libraries it needs (Requires.private,
# Libs.private) are linked as the system has them (shared here).
deps=$(pkg-config --print-requires-private modelsync | awk '{print $1}' | tr '\n' ' ')
# shellcheck disable=SC2046,SC2086
cc -std=c99 -Wall -Werror -o "$work/app-static" "$work/app.c" $(pkg-config --cflags modelsync) \
  "$libdir/libmodelsync.a" $(pkg-config --libs $deps) -lstdc++ -lm -lpthread
"$work/app-static" >/dev/null
if ldd "$work/app-static" | grep -q libmodelsync; then echo "static: still links libmodelsync.so"; exit 1; fi
echo "capi_install_test: ok ($out)"
