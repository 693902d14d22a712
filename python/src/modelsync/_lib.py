"""ctypes declarations of libmodelsync (include/modelsync/modelsync.h). Internal."""
import ctypes
import ctypes.util
import os
from pathlib import Path

API_VERSION = 1  # MS_API_VERSION this binding was written for

OK = 0
ERR_INVALID_ARGUMENT = 2
ERR_DAMAGED = 3
ERR_LOCKED = 4
ERR_NEWER_FORMAT = 5
ERR_NO_SPACE = 6
ERR_NETWORK = 7
ERR_NOT_FOUND = 8
ERR_CANCELLED = 130

# ms_option
OPT_ENDPOINT, OPT_TOKEN, OPT_OFFLINE, OPT_MAX_RATE, OPT_CONNECTIONS = 1, 2, 3, 4, 5
OPT_CA_BUNDLE, OPT_HTTP_PROXY, OPT_HTTPS_PROXY, OPT_NO_PROXY, OPT_NO_WAIT = 6, 7, 8, 9, 10
OPT_STALL_TIMEOUT = 11
# ms_pull_option
PULL_REVISION, PULL_MODEL_ID, PULL_INCLUDE, PULL_EXCLUDE, PULL_ANY_FORMAT = 1, 2, 3, 4, 5
# ms_pull_field
RESULT_REPO, RESULT_REF, RESULT_COMMIT, RESULT_MODEL_DIR, RESULT_MARKER, RESULT_MARKER_NOTE = (
    1, 2, 3, 4, 5, 6)
RESULT_FILES, RESULT_BYTES_TOTAL, RESULT_BYTES_FETCHED, RESULT_BYTES_REUSED = 20, 21, 22, 23
RESULT_UP_TO_DATE, RESULT_MARKER_WRITTEN = 24, 25

EVENT_KINDS = {1: "waiting", 2: "resolved", 3: "progress", 4: "file_done", 5: "retry",
               6: "warning"}


class Event(ctypes.Structure):
    _fields_ = [
        ("kind", ctypes.c_int),
        ("repo", ctypes.c_char_p),
        ("ref", ctypes.c_char_p),
        ("commit", ctypes.c_char_p),
        ("path", ctypes.c_char_p),
        ("message", ctypes.c_char_p),
        ("bytes_done", ctypes.c_uint64),
        ("bytes_total", ctypes.c_uint64),
        ("bytes_to_fetch", ctypes.c_uint64),
        ("files_done", ctypes.c_uint64),
        ("files_total", ctypes.c_uint64),
        ("size", ctypes.c_uint64),
        ("fetched", ctypes.c_int),
        ("delay_ms", ctypes.c_uint64),
    ]


EVENT_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(Event), ctypes.c_void_p)
LINE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)


def _find() -> str:
    env = os.environ.get("MODELSYNC_LIBRARY")
    if env:
        return env
    bundled = Path(__file__).resolve().parent / "libmodelsync.so"
    if bundled.exists():
        return str(bundled)
    found = ctypes.util.find_library("modelsync")
    if found:
        return found
    raise ImportError("libmodelsync not found: install the package with `pip install ./python` "
                      "or set MODELSYNC_LIBRARY to the path of libmodelsync.so")


def _load() -> ctypes.CDLL:
    lib = ctypes.CDLL(_find())
    P = ctypes.c_void_p
    PP = ctypes.POINTER(ctypes.c_void_p)
    S = ctypes.c_char_p
    I = ctypes.c_int
    U64 = ctypes.c_uint64
    sigs = {
        "ms_version": (S, []),
        "ms_api_version": (I, []),
        "ms_last_error": (S, []),
        "ms_last_error_kind": (S, []),
        "ms_last_error_detail": (ctypes.c_long, []),
        "ms_free": (None, [P]),
        "ms_config_new": (I, [I, PP]),
        "ms_config_set": (I, [P, I, S]),
        "ms_config_free": (None, [P]),
        "ms_root_open": (I, [S, P, PP]),
        "ms_root_close": (None, [P]),
        "ms_cancel_new": (I, [PP]),
        "ms_cancel_fire": (None, [P]),
        "ms_cancel_reset": (None, [P]),
        "ms_cancel_fired": (I, [P]),
        "ms_cancel_free": (None, [P]),
        "ms_pull_options_new": (I, [PP]),
        "ms_pull_options_set": (I, [P, I, S]),
        "ms_pull_options_on_event": (None, [P, EVENT_FN, P]),
        "ms_pull_options_cancel": (None, [P, P]),
        "ms_pull_options_free": (None, [P]),
        "ms_pull": (I, [P, S, P, PP]),
        "ms_pull_result_string": (S, [P, I]),
        "ms_pull_result_number": (U64, [P, I]),
        "ms_pull_result_json": (S, [P]),
        "ms_pull_result_free": (None, [P]),
        "ms_ls_json": (I, [P, PP]),
        "ms_status_json": (I, [P, S, PP]),
        "ms_diff_json": (I, [P, S, S, I, PP]),
        "ms_inspect_json": (I, [P, S, PP]),
        "ms_catalog_json": (I, [PP]),
        "ms_add_local": (I, [P, S, S, S, PP]),
        "ms_log": (I, [P, U64, S, ctypes.c_int64, LINE_FN, P]),
        "ms_daemon_request": (I, [P, S, PP]),
        "ms_verify": (I, [P, S, I, P, PP]),
        "ms_remove": (I, [P, S]),
        "ms_gc": (I, [P, I, ctypes.POINTER(U64)]),
        "ms_rebuild": (I, [P, I]),
        "ms_track": (I, [P, S, S, S]),
        "ms_untrack": (I, [P, S]),
        "ms_sync": (I, [P, EVENT_FN, P, P, PP]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    if lib.ms_api_version() != API_VERSION:
        raise ImportError(f"libmodelsync speaks API version {lib.ms_api_version()}, this "
                          f"package {API_VERSION}: reinstall the package")
    return lib


lib = _load()


def take_string(ptr: ctypes.c_void_p) -> str:
    """A string the library handed over (char**): read, then freed."""
    if not ptr.value:
        return ""
    try:
        return ctypes.string_at(ptr.value).decode("utf-8", "replace")
    finally:
        lib.ms_free(ptr)


def text(b) -> str:
    return b.decode("utf-8", "replace") if b else ""
