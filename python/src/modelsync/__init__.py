"""modelsync: keep Hugging Face model repositories complete, verified and current.

    import modelsync
    m = modelsync.pull("mlx-community/Qwen2.5-0.5B-Instruct-4bit")
    m.path      # the model directory, complete and verified
    m.marker    # <root>/<model-id>: exists only while the model is complete

A thin layer over libmodelsync's C API (include/modelsync/modelsync.h) through ctypes: the
same engine as the `modelsync` command, the same root, the same resumable log. Pulls can be
interrupted (Ctrl-C, a Cancel from another thread) and resume where they stopped.
"""
import ctypes
import json
import os
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from . import _lib
from ._lib import lib

__all__ = [
    "pull", "snapshot_download", "status", "diff", "ls", "inspect", "catalog", "verify", "remove", "gc", "rebuild",
    "Root", "Cancel", "Event", "PullResult", "default_root", "version",
    "ModelsyncError", "InvalidArgumentError", "IntegrityError", "RootInUseError",
    "NewerFormatError", "NoSpaceError", "NetworkError", "OfflineError", "NotFoundError",
    "CancelledError",
]

__version__ = _lib.text(lib.ms_version())


def version() -> str:
    """The version of the loaded libmodelsync."""
    return _lib.text(lib.ms_version())


# ---- Errors: one class per class of the command line's exit status ----

class ModelsyncError(Exception):
    """A modelsync call failed. `code`: the C API's ms_code (the CLI's exit status); `kind`:
    the finer cause ("NotFound", "Unauthorized", "Offline", "Transient", "Integrity", ...);
    `detail`: an HTTP status, libcurl code or errno behind it (0 when none)."""

    def __init__(self, message: str, code: int = 1, kind: str = "", detail: int = 0):
        super().__init__(message)
        self.message, self.code, self.kind, self.detail = message, code, kind, detail


class InvalidArgumentError(ModelsyncError, ValueError):
    """A bad argument or option, a path that is no root, a hostile listing."""


class IntegrityError(ModelsyncError):
    """Damaged data: content failed its hash, a corrupt log, a marker that lies."""


class RootInUseError(ModelsyncError):
    """The root is in use by another writer and waiting was not allowed (no_wait)."""


class NewerFormatError(ModelsyncError):
    """The root was written by a newer modelsync."""


class NoSpaceError(ModelsyncError):
    """The disk is full; what was fetched is kept."""


class NetworkError(ModelsyncError):
    """The network failed after retries."""


class OfflineError(NetworkError):
    """HF_HUB_OFFLINE (or offline=True) and the answer is not in the log."""


class NotFoundError(ModelsyncError):
    """Repository, revision or file not found, or not authorized to read it."""


class CancelledError(ModelsyncError):
    """A Cancel fired; what was fetched is kept and the next pull resumes."""


_BY_CODE = {
    _lib.ERR_INVALID_ARGUMENT: InvalidArgumentError, _lib.ERR_DAMAGED: IntegrityError,
    _lib.ERR_LOCKED: RootInUseError, _lib.ERR_NEWER_FORMAT: NewerFormatError,
    _lib.ERR_NO_SPACE: NoSpaceError, _lib.ERR_NETWORK: NetworkError,
    _lib.ERR_NOT_FOUND: NotFoundError, _lib.ERR_CANCELLED: CancelledError,
}


def _last_error() -> tuple:
    """The library's last error on this thread: (message, kind, detail)."""
    return (_lib.text(lib.ms_last_error()), _lib.text(lib.ms_last_error_kind()),
            int(lib.ms_last_error_detail()))


def _error(code: int, message: str, kind: str, detail: int) -> ModelsyncError:
    cls = _BY_CODE.get(code, ModelsyncError)
    if cls is NetworkError and kind == "Offline":
        cls = OfflineError
    return cls(message, code, kind, detail)


def _check(code: int) -> None:
    """Raises the error of a failed call (read on the calling thread, at once)."""
    if code != _lib.OK:
        raise _error(code, *_last_error())


# ---- Values ----

@dataclass(frozen=True)
class Event:
    """What a pull tells while it runs (the events of `modelsync pull --json`). kind:
    "waiting", "resolved", "progress", "file_done", "retry", "warning"."""
    kind: str
    repo: str = ""
    ref: str = ""
    commit: str = ""
    path: str = ""
    message: str = ""
    bytes_done: int = 0
    bytes_total: int = 0
    bytes_to_fetch: int = 0
    files_done: int = 0
    files_total: int = 0
    size: int = 0
    fetched: bool = False
    delay_ms: int = 0


@dataclass(frozen=True)
class PullResult:
    repo: str
    ref: str
    commit: str
    path: str          # the model directory, <root>/models/<org>/<name>
    marker: str        # <root>/<model-id>
    marker_written: bool
    marker_note: str   # why there is no marker ("" when there is)
    files: int
    bytes_total: int
    bytes_fetched: int
    bytes_reused: int
    up_to_date: bool


class Cancel:
    """A cancel handle: fire() from any thread stops the calls it was given to soon."""

    def __init__(self):
        h = ctypes.c_void_p()
        _check(lib.ms_cancel_new(ctypes.byref(h)))
        self._h = h

    def fire(self) -> None:
        lib.ms_cancel_fire(self._h)

    def reset(self) -> None:
        lib.ms_cancel_reset(self._h)

    @property
    def fired(self) -> bool:
        return bool(lib.ms_cancel_fired(self._h))

    def __del__(self):
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.ms_cancel_free(h)


def default_root() -> str:
    """MODELSYNC_ROOT, else $XDG_DATA_HOME/modelsync, else ~/.local/share/modelsync (as the
    command line)."""
    if os.environ.get("MODELSYNC_ROOT"):
        return os.environ["MODELSYNC_ROOT"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                           "share")
    return os.path.join(base, "modelsync")


def _event(p) -> Event:
    e = p.contents
    t = _lib.text
    return Event(_lib.EVENT_KINDS.get(e.kind, str(e.kind)), t(e.repo), t(e.ref), t(e.commit),
                 t(e.path), t(e.message), e.bytes_done, e.bytes_total, e.bytes_to_fetch,
                 e.files_done, e.files_total, e.size, bool(e.fetched), e.delay_ms)


def _run_interruptibly(work: Callable[[], int], cancel: Cancel) -> int:
    """Runs a blocking call on a worker thread so that Ctrl-C (KeyboardInterrupt, which
    Python delivers to the main thread) fires `cancel`; waits until the call has stopped
    (cancelling takes a fraction of a second), then re-raises. Raises the call's error.

    Waits on an Event, not Thread.join: a join interrupted by KeyboardInterrupt can mark a
    running thread as finished (CPython gh-90882), and the library would then call back into
    a frame that is gone."""
    box = {}
    done = threading.Event()

    def target():
        try:
            code = work()
            box["code"] = code
            if code != _lib.OK:  # thread-local in the library: read on this thread
                box["error"] = _last_error()
        finally:
            done.set()

    threading.Thread(target=target, name="modelsync-call", daemon=True).start()
    interrupted = None
    while True:
        try:
            if done.wait(0.05):
                break
        except KeyboardInterrupt as e:  # first Ctrl-C cancels; later ones wait for it too
            interrupted = interrupted or e
            cancel.fire()
    if interrupted is not None:
        raise interrupted
    code = box["code"]
    if code != _lib.OK:
        raise _error(code, *box["error"])
    return code


class Root:
    """An open modelsync root. Usable from several threads: calls on one root run one at a
    time in a process (a status asked during a pull waits for it); other processes' writers
    are serialised by the root's lock.

    from_environment: start the configuration from the environment as the command line does
    (HF_ENDPOINT, HF_TOKEN and its file, HF_HUB_OFFLINE, SSL_CERT_FILE & co., proxies,
    MODELSYNC_*); the arguments given here override it."""

    def __init__(self, path: Optional[str] = None, *, endpoint: Optional[str] = None,
                 token: Optional[str] = None, offline: Optional[bool] = None,
                 max_rate: Optional[str] = None, connections: Optional[int] = None,
                 ca_bundle: Optional[str] = None, no_wait: bool = False,
                 from_environment: bool = True):
        self.path_given = path or default_root()
        cfg = ctypes.c_void_p()
        _check(lib.ms_config_new(1 if from_environment else 0, ctypes.byref(cfg)))
        try:
            for opt, value in ((_lib.OPT_ENDPOINT, endpoint), (_lib.OPT_TOKEN, token),
                               (_lib.OPT_MAX_RATE, max_rate), (_lib.OPT_CA_BUNDLE, ca_bundle)):
                if value is not None:
                    _check(lib.ms_config_set(cfg, opt, str(value).encode()))
            if offline is not None:
                _check(lib.ms_config_set(cfg, _lib.OPT_OFFLINE, b"1" if offline else b"0"))
            if connections is not None:
                _check(lib.ms_config_set(cfg, _lib.OPT_CONNECTIONS, str(connections).encode()))
            if no_wait:
                _check(lib.ms_config_set(cfg, _lib.OPT_NO_WAIT, b"1"))
            h = ctypes.c_void_p()
            _check(lib.ms_root_open(os.fsencode(self.path_given), cfg, ctypes.byref(h)))
            self._h = h
        finally:
            lib.ms_config_free(cfg)

    @property
    def path(self) -> str:
        return self.path_given

    def close(self) -> None:
        h, self._h = getattr(self, "_h", None), None
        if h:
            lib.ms_root_close(h)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _handle(self):
        if not getattr(self, "_h", None):
            raise InvalidArgumentError("this Root is closed", _lib.ERR_INVALID_ARGUMENT)
        return self._h

    def pull(self, repo: str, *, revision: Optional[str] = None,
             include: Optional[Iterable[str]] = None, exclude: Optional[Iterable[str]] = None,
             model_id: Optional[str] = None, progress: Optional[Callable[[Event], None]] = None,
             cancel: Optional[Cancel] = None) -> PullResult:
        """Makes the model directory hold `revision` (default "main"), complete and verified,
        resuming whatever earlier pulls left. progress(Event) is called from a worker thread.
        Ctrl-C cancels promptly (the bytes fetched are kept) and re-raises KeyboardInterrupt."""
        h = self._handle()
        cancel = cancel or Cancel()
        opts = ctypes.c_void_p()
        _check(lib.ms_pull_options_new(ctypes.byref(opts)))
        raised = []

        def on_event(p, _user):
            if progress is None or raised:
                return
            try:
                progress(_event(p))
            except BaseException as e:  # noqa: BLE001 - carried over the C boundary
                raised.append(e)
                cancel.fire()

        callback = _lib.EVENT_FN(on_event)  # kept alive until the call returns
        result = ctypes.c_void_p()
        try:
            if revision:
                _check(lib.ms_pull_options_set(opts, _lib.PULL_REVISION, revision.encode()))
            if model_id:
                _check(lib.ms_pull_options_set(opts, _lib.PULL_MODEL_ID, model_id.encode()))
            for g in include or ():
                _check(lib.ms_pull_options_set(opts, _lib.PULL_INCLUDE, g.encode()))
            for g in exclude or ():
                _check(lib.ms_pull_options_set(opts, _lib.PULL_EXCLUDE, g.encode()))
            lib.ms_pull_options_on_event(opts, callback, None)
            lib.ms_pull_options_cancel(opts, cancel._h)
            try:
                _run_interruptibly(
                    lambda: lib.ms_pull(h, repo.encode(), opts, ctypes.byref(result)), cancel)
            except CancelledError:
                if raised:
                    raise raised[0]
                raise
            if raised:
                raise raised[0]
            s = lambda f: _lib.text(lib.ms_pull_result_string(result, f))  # noqa: E731
            n = lambda f: int(lib.ms_pull_result_number(result, f))  # noqa: E731
            return PullResult(
                repo=s(_lib.RESULT_REPO), ref=s(_lib.RESULT_REF), commit=s(_lib.RESULT_COMMIT),
                path=s(_lib.RESULT_MODEL_DIR), marker=s(_lib.RESULT_MARKER),
                marker_written=bool(n(_lib.RESULT_MARKER_WRITTEN)),
                marker_note=s(_lib.RESULT_MARKER_NOTE), files=n(_lib.RESULT_FILES),
                bytes_total=n(_lib.RESULT_BYTES_TOTAL), bytes_fetched=n(_lib.RESULT_BYTES_FETCHED),
                bytes_reused=n(_lib.RESULT_BYTES_REUSED), up_to_date=bool(n(_lib.RESULT_UP_TO_DATE)))
        finally:
            if result.value:
                lib.ms_pull_result_free(result)
            lib.ms_pull_options_free(opts)

    def _json(self, call) -> object:
        out = ctypes.c_void_p()
        _check(call(ctypes.byref(out)))
        return json.loads(_lib.take_string(out))

    def status(self, repo: Optional[str] = None) -> dict:
        """Every repo's state (or one repo's): `modelsync status --json`."""
        h = self._handle()
        r = repo.encode() if repo else None
        return self._json(lambda out: lib.ms_status_json(h, r, out))

    def diff(self, repo: str, revision: Optional[str] = None, *, local: bool = False) -> dict:
        """What updating repo to revision (default "main") would change, changing nothing:
        `modelsync diff --json` (added, modified, removed, renamed, fetch_bytes, changes)."""
        h = self._handle()
        rev = revision.encode() if revision else None
        return self._json(lambda out: lib.ms_diff_json(h, repo.encode(), rev, 1 if local else 0,
                                                       out))

    def inspect(self, repo: str) -> dict:
        """What a local model is (`modelsync inspect --json`): revision, files, model type,
        quantization, tensors, parameters."""
        h = self._handle()
        return self._json(lambda out: lib.ms_inspect_json(h, repo.encode(), out))

    def add_local(self, directory: str, model_id: str, repo: Optional[str] = None) -> dict:
        """Adopts a model directory you already have (checked, stored as verified blobs, laid
        out, marked): `modelsync add-local --json`."""
        h = self._handle()
        return self._json(lambda out: lib.ms_add_local(
            h, os.fsencode(directory), model_id.encode(), repo.encode() if repo else None, out))

    def log(self, from_seq: int = 1, repo: Optional[str] = None, since_ms: int = 0) -> list:
        """The event log in order, as `modelsync log --json` lines (dicts); runs of events
        compacted away by gc appear as {"compacted": {...}}."""
        h = self._handle()
        lines = []

        def on_line(line, _user):
            lines.append(json.loads(line))
            return 0

        cb = _lib.LINE_FN(on_line)
        _check(lib.ms_log(h, from_seq, repo.encode() if repo else None, since_ms, cb, None))
        return lines

    def daemon(self, request: str = "status") -> dict:
        """Asks the daemon running on this root ("status", "sync-now", "reload", "rate 10MB");
        NotFoundError when none runs (start one with `modelsync daemon`)."""
        h = self._handle()
        return self._json(lambda out: lib.ms_daemon_request(h, request.encode(), out))

    def ls(self) -> list:
        """The installed models: the "models" of `modelsync ls --json`."""
        h = self._handle()
        return self._json(lambda out: lib.ms_ls_json(h, out))["models"]

    def verify(self, repo: Optional[str] = None, *, repair: bool = False,
               cancel: Optional[Cancel] = None) -> dict:
        """Re-hashes every file against the log (repair: fetches what is damaged). Raises
        IntegrityError when damage remains; the report is its `report` attribute."""
        h = self._handle()
        cancel = cancel or Cancel()
        out = ctypes.c_void_p()
        r = repo.encode() if repo else None
        box = {}

        def work():
            code = lib.ms_verify(h, r, 1 if repair else 0, cancel._h, ctypes.byref(out))
            box["report"] = json.loads(_lib.take_string(out)) if out.value else {}
            return code

        try:
            _run_interruptibly(work, cancel)
        except IntegrityError as e:
            e.report = box.get("report", {})
            raise
        return box["report"]

    def remove(self, repo: str) -> None:
        """Removes the model directory and marker of repo (your own files in it are kept)."""
        _check(lib.ms_remove(self._handle(), repo.encode()))

    def gc(self, *, dry_run: bool = False) -> int:
        """Frees what nothing refers to; returns the bytes freed (or that would be)."""
        freed = ctypes.c_uint64()
        _check(lib.ms_gc(self._handle(), 1 if dry_run else 0, ctypes.byref(freed)))
        return int(freed.value)

    def rebuild(self, *, fetch: bool = False) -> None:
        """Rebuilds models/ and the markers from the log (fetch: download what is missing)."""
        _check(lib.ms_rebuild(self._handle(), 1 if fetch else 0))

    def track(self, repo: str, revision: Optional[str] = None,
              model_id: Optional[str] = None) -> None:
        _check(lib.ms_track(self._handle(), repo.encode(),
                            revision.encode() if revision else None,
                            model_id.encode() if model_id else None))

    def untrack(self, repo: str) -> None:
        _check(lib.ms_untrack(self._handle(), repo.encode()))


# ---- One-call helpers ----

def _root(root, **kw) -> Root:
    return root if isinstance(root, Root) else Root(root, **kw)


def pull(repo: str, root=None, revision: Optional[str] = None,
         include: Optional[Iterable[str]] = None, exclude: Optional[Iterable[str]] = None,
         endpoint: Optional[str] = None, token: Optional[str] = None,
         progress: Optional[Callable[[Event], None]] = None, model_id: Optional[str] = None,
         cancel: Optional[Cancel] = None) -> PullResult:
    """Pulls repo into root (a path, a Root, or None for default_root()). See Root.pull."""
    r = _root(root, endpoint=endpoint, token=token)
    try:
        return r.pull(repo, revision=revision, include=include, exclude=exclude,
                      model_id=model_id, progress=progress, cancel=cancel)
    finally:
        if r is not root:
            r.close()


def _with_root(root, fn):
    r = _root(root)
    try:
        return fn(r)
    finally:
        if r is not root:
            r.close()


def status(root=None, repo: Optional[str] = None) -> dict:
    return _with_root(root, lambda r: r.status(repo))


def diff(repo: str, root=None, revision: Optional[str] = None, local: bool = False,
         endpoint: Optional[str] = None) -> dict:
    r = _root(root, endpoint=endpoint)
    try:
        return r.diff(repo, revision, local=local)
    finally:
        if r is not root:
            r.close()


def catalog() -> list:
    """The curated models known to load (`modelsync catalog --json`)."""
    out = ctypes.c_void_p()
    _check(lib.ms_catalog_json(ctypes.byref(out)))
    return json.loads(_lib.take_string(out))


def inspect(repo: str, root=None) -> dict:
    return _with_root(root, lambda r: r.inspect(repo))


def ls(root=None) -> list:
    return _with_root(root, lambda r: r.ls())


def verify(root=None, repo: Optional[str] = None, repair: bool = False) -> dict:
    return _with_root(root, lambda r: r.verify(repo, repair=repair))


def remove(repo: str, root=None) -> None:
    return _with_root(root, lambda r: r.remove(repo))


def gc(root=None, dry_run: bool = False) -> int:
    return _with_root(root, lambda r: r.gc(dry_run=dry_run))


def rebuild(root=None, fetch: bool = False) -> None:
    return _with_root(root, lambda r: r.rebuild(fetch=fetch))


def snapshot_download(repo_id: str, revision: Optional[str] = None,
                      allow_patterns=None, ignore_patterns=None,
                      local_dir: Optional[str] = None, *, endpoint: Optional[str] = None,
                      token: Optional[str] = None, repo_type: Optional[str] = None) -> str:
    """huggingface_hub.snapshot_download's shape, so code switches with one import; returns
    the directory holding the files.

    What differs: files land in a modelsync root (`local_dir` if given, else default_root())
    under models/<org>/<name>/, not in the Hugging Face cache; every file is hashed against
    the hub's listing before the call returns, and an interrupted call resumes; a marker
    <root>/<name> is written when the model is complete. Only model repos (repo_type None or
    "model"); patterns are fnmatch globs, as huggingface_hub's."""
    if repo_type not in (None, "model"):
        raise InvalidArgumentError(f"repo_type {repo_type!r}: modelsync syncs model repos only",
                                   _lib.ERR_INVALID_ARGUMENT)

    def globs(p):
        return [p] if isinstance(p, str) else list(p or [])

    return pull(repo_id, root=local_dir, revision=revision, include=globs(allow_patterns),
                exclude=globs(ignore_patterns), endpoint=endpoint, token=token).path
