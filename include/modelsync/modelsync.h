/*
 * modelsync.h: the C API of modelsync (library libmodelsync, shared and static).
 *
 * modelsync keeps model repositories from a Hugging Face-compatible hub complete, verified
 * and current in a root directory: <root>/models/<org>/<name>/ plus an empty marker file
 * <root>/<model-id> that exists only while that model is complete and verified. This API is
 * what the `modelsync` program does, for programs that cannot run it: an app, a Python
 * package (python/), a Swift wrapper (docs/embedding.md).
 *
 * CAVEATS (read these first)
 *  - Every call is synchronous: it returns when the work is done, failed or was cancelled.
 *    A pull of a large model takes minutes; call it from a worker thread, never from a UI
 *    thread. Cancel it from any thread with an ms_cancel.
 *  - Errors: every call that can fail returns an ms_code. After a failure, ms_last_error()
 *    says what happened and what to do, on the thread that made the call, until that
 *    thread's next call into this API. Nothing is half-written: what a failed or cancelled
 *    call leaves on disk is what the log records, and the next call resumes from it.
 *  - Strings in are UTF-8 and NUL-terminated; a NULL where a string is optional means "not
 *    given". Strings out that a caller owns are freed with ms_free(); strings returned as
 *    `const char*` by a getter live as long as the object they came from.
 *  - Handles are opaque. Free each with its own _free / _close function, exactly once.
 *  - Callbacks must not call back into this API with the same root, and must return
 *    quickly (they run on the thread doing the work, except where said otherwise).
 *  - Process-wide state: libcurl's global initialisation happens once, on the first
 *    ms_root_open(), in a thread-safe way; nothing else is global. The process's umask,
 *    signal handlers and environment are never changed, and the environment is read only
 *    when a configuration asks for it (ms_config_new(1, ...)).
 *  - Several roots may be open at once, in parallel. Within one process, the calls on one
 *    root path (through any handle, from any thread) run one at a time: LMDB allows one open
 *    of a log per process, so a status asked during a pull of the same root waits for the
 *    pull to end (watch a pull through its events, or from another process: the CLI's
 *    `status` works alongside). Across processes, writers take the root's lock and run one
 *    at a time, as two `modelsync` processes would (MS_OPT_NO_WAIT makes a pull fail with
 *    MS_ERR_LOCKED instead of waiting).
 *
 * THREADS
 *  ms_version, ms_api_version, ms_code_name, ms_free: any thread, any time.
 *  ms_last_error*: the calling thread's own last error.
 *  ms_config_*, ms_pull_options_*: one thread at a time per object; read-only (and so
 *    shareable) once passed to ms_root_open / ms_pull.
 *  operations on a root: any thread; on one root path they run one at a time (above).
 *  ms_cancel_fire: any thread, also from a signal handler (it only stores a flag).
 *
 * The same program's command line documents the behaviour behind each call: `modelsync
 * help pull`, README.md. The JSON documents of ls, status, diff, inspect, catalog,
 * add-local, log and a pull's result are exactly what the command line prints with --json
 * (docs/json/<command>.schema.json); verify and sync return one summary document each,
 * described at their calls (the command line streams lines for those).
 */
#ifndef MODELSYNC_MODELSYNC_H
#define MODELSYNC_MODELSYNC_H

#include <stddef.h>
#include <stdint.h>

#if defined(MODELSYNC_BUILDING_LIBRARY) && defined(__GNUC__)
#define MS_API __attribute__((visibility("default")))
#else
#define MS_API
#endif

#define MS_VERSION_MAJOR 0
#define MS_VERSION_MINOR 1
#define MS_VERSION_PATCH 0
#define MS_VERSION_STRING "0.1.0"
/* Bumped when a call, a struct or a code changes meaning: code compiled against one value
 * runs only with a library of the same ms_api_version(). */
#define MS_API_VERSION 1

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Errors ----------------------------------------------------------------------------
 * The classes of the command line's exit statuses (README.md "Exit status"). */
typedef enum ms_code {
  MS_OK = 0,
  MS_ERR_OTHER = 1,            /* anything not below */
  MS_ERR_INVALID_ARGUMENT = 2, /* a bad argument or option, a path that is no root, a hostile listing */
  MS_ERR_DAMAGED = 3,          /* corrupt log, content that failed its hash, a marker that lies */
  MS_ERR_LOCKED = 4,           /* the root is in use and MS_OPT_NO_WAIT was set */
  MS_ERR_NEWER_FORMAT = 5,     /* the root was written by a newer modelsync */
  MS_ERR_NO_SPACE = 6,         /* the disk is full (what was fetched is kept) */
  MS_ERR_NETWORK = 7,          /* offline (HF_HUB_OFFLINE) or the network failed after retries */
  MS_ERR_NOT_FOUND = 8,        /* repository, revision or file not found, or not authorized */
  MS_ERR_CANCELLED = 130       /* an ms_cancel fired (what was fetched is kept) */
} ms_code;

/* "0.1.0": the library's version (may differ from MS_VERSION_STRING of the header). */
MS_API const char* ms_version(void);
/* The library's MS_API_VERSION. */
MS_API int ms_api_version(void);
/* "ok", "other", "invalid_argument", "damaged", "locked", "newer_format", "no_space",
 * "network", "not_found", "cancelled"; "unknown" for anything else. Static strings. */
MS_API const char* ms_code_name(ms_code code);

/* The calling thread's last error: a sentence saying what happened and what to do ("" after
 * a success). Valid until the thread's next call into this API. */
MS_API const char* ms_last_error(void);
/* The finer cause of the last error, as --json's "code" names it: "NotFound",
 * "Unauthorized", "Offline", "Transient", "Integrity", "Corruption", "NoSpace", "Locked",
 * "Version", "InvalidArgument", "Cancelled", "Permanent", "IOError"; "" after a success. */
MS_API const char* ms_last_error_kind(void);
/* A number behind the last error: the HTTP status or libcurl code for network failures,
 * errno for I/O; 0 when there is none. */
MS_API long ms_last_error_detail(void);

/* Frees a string (or any buffer) this API handed to the caller. NULL is fine. */
MS_API void ms_free(void* p);

/* ---- Configuration ---------------------------------------------------------------------
 * How a root reaches the hub. Values are strings, checked when set. */
typedef struct ms_config ms_config;

typedef enum ms_option {
  MS_OPT_ENDPOINT = 1,    /* hub base URL, e.g. "https://huggingface.co" (HF_ENDPOINT) */
  MS_OPT_TOKEN = 2,       /* bearer token; sent only to the endpoint's origin; "" = none */
  MS_OPT_OFFLINE = 3,     /* "1"/"0": no network at all (HF_HUB_OFFLINE) */
  MS_OPT_MAX_RATE = 4,    /* cap on download bytes per second, "0" = none; "10MB", "5MiB" */
  MS_OPT_CONNECTIONS = 5, /* most parallel connections of a pull, "1".."64"; "0" = default (16) */
  MS_OPT_CA_BUNDLE = 6,   /* PEM file of trusted certificate authorities ("" = the system's) */
  MS_OPT_HTTP_PROXY = 7,  /* proxy for http:// URLs (http_proxy) */
  MS_OPT_HTTPS_PROXY = 8, /* proxy for https:// URLs (https_proxy) */
  MS_OPT_NO_PROXY = 9,    /* hosts that bypass proxies, as curl reads NO_PROXY */
  MS_OPT_NO_WAIT = 10,    /* "1": a root in use fails with MS_ERR_LOCKED instead of waiting */
  MS_OPT_STALL_TIMEOUT = 11 /* a connection silent this long is retried: "20s", "500ms" */
} ms_option;

/* A new configuration. from_environment = 1 starts from the process environment as the
 * command line reads it (HF_ENDPOINT, HF_TOKEN and the token file, HF_HUB_OFFLINE, the CA and
 * proxy variables, MODELSYNC_*); 0 starts from the defaults and reads nothing. A malformed
 * variable is MS_ERR_INVALID_ARGUMENT naming it (and *out is NULL). */
MS_API ms_code ms_config_new(int from_environment, ms_config** out);
/* Sets one option; MS_ERR_INVALID_ARGUMENT (nothing changed) when the value is not usable. */
MS_API ms_code ms_config_set(ms_config* config, ms_option option, const char* value);
MS_API void ms_config_free(ms_config* config);

/* ---- Roots -----------------------------------------------------------------------------*/
typedef struct ms_root ms_root;

/* Opens the root at path (absolute or relative to the current directory; created by the
 * first pull when missing). config: copied, may be NULL (the defaults, no environment).
 * Opening touches nothing on disk. */
MS_API ms_code ms_root_open(const char* path, const ms_config* config, ms_root** out);
/* Closes the handle. Calls still running on it must have returned. NULL is fine. */
MS_API void ms_root_close(ms_root* root);
/* The root's absolute path. */
MS_API const char* ms_root_path(const ms_root* root);

/* ---- Cancellation ----------------------------------------------------------------------*/
typedef struct ms_cancel ms_cancel;
MS_API ms_code ms_cancel_new(ms_cancel** out);
/* Asks every call given this handle to stop soon: a pull stops within a fraction of a second,
 * records every durable byte and returns MS_ERR_CANCELLED; the next pull resumes. Sticky
 * until ms_cancel_reset. Any thread; async-signal-safe. */
MS_API void ms_cancel_fire(ms_cancel* cancel);
MS_API void ms_cancel_reset(ms_cancel* cancel);
MS_API int ms_cancel_fired(const ms_cancel* cancel);
MS_API void ms_cancel_free(ms_cancel* cancel);

/* ---- Pull ------------------------------------------------------------------------------*/
/* What a pull tells while it runs: the events of `modelsync pull --json`. */
typedef enum ms_event_kind {
  MS_EVENT_WAITING = 1,   /* the root is in use: waiting for its lock (message) */
  MS_EVENT_RESOLVED = 2,  /* repo, ref, commit, files_total, bytes_total, bytes_to_fetch */
  MS_EVENT_PROGRESS = 3,  /* bytes_done, bytes_total, files_done, files_total (<= 10 a second) */
  MS_EVENT_FILE_DONE = 4, /* path, size, fetched (0: reused from what was on disk) */
  MS_EVENT_RETRY = 5,     /* message, delay_ms: a request waits before it is retried */
  MS_EVENT_WARNING = 6    /* message: something to know that does not stop the pull */
} ms_event_kind;

/* Valid only during the callback. Fields a kind does not use are 0 or "". New fields are
 * only ever added at the end. */
typedef struct ms_event {
  ms_event_kind kind;
  const char* repo;
  const char* ref;
  const char* commit;
  const char* path;
  const char* message;
  uint64_t bytes_done, bytes_total, bytes_to_fetch;
  uint64_t files_done, files_total;
  uint64_t size;
  int fetched;
  uint64_t delay_ms;
} ms_event;

/* Called on the pulling thread, except MS_EVENT_RETRY, which comes from the network
 * thread while the pulling thread waits: a callback that keeps state must lock. */
typedef void (*ms_event_fn)(const ms_event* event, void* user);

typedef struct ms_pull_options ms_pull_options;

typedef enum ms_pull_option {
  MS_PULL_REVISION = 1,  /* branch, tag or commit (a unique prefix of 7+ hex); default "main" */
  MS_PULL_MODEL_ID = 2,  /* the marker's name; default: the repo's name part */
  MS_PULL_INCLUDE = 3,   /* adds a glob of files to fetch (fnmatch); none = every file */
  MS_PULL_EXCLUDE = 4,   /* adds a glob of files to leave out */
  MS_PULL_ANY_FORMAT = 5 /* "1": accept a GGUF-only or PyTorch-only repo as plain files */
} ms_pull_option;

MS_API ms_code ms_pull_options_new(ms_pull_options** out);
MS_API ms_code ms_pull_options_set(ms_pull_options* options, ms_pull_option option,
                                   const char* value);
/* fn may be NULL (no events). */
MS_API void ms_pull_options_on_event(ms_pull_options* options, ms_event_fn fn, void* user);
/* cancel: not owned; must outlive the pull. NULL = not cancellable. */
MS_API void ms_pull_options_cancel(ms_pull_options* options, ms_cancel* cancel);
MS_API void ms_pull_options_free(ms_pull_options* options);

typedef struct ms_pull_result ms_pull_result;

/* Makes <root>/models/<org>/<name>/ hold the revision, complete and verified, and writes the
 * marker when the model passes its checks; resumes whatever earlier pulls left. repo:
 * "org/name" (also "org/name@rev" or a hub URL, as the command line reads them). options
 * may be NULL. *out (when out is not NULL) receives the result on MS_OK, else NULL.
 * Errors: MS_ERR_INVALID_ARGUMENT, MS_ERR_NOT_FOUND, MS_ERR_NETWORK, MS_ERR_NO_SPACE,
 * MS_ERR_DAMAGED (content failed its hash twice), MS_ERR_LOCKED, MS_ERR_CANCELLED,
 * MS_ERR_NEWER_FORMAT. */
MS_API ms_code ms_pull(ms_root* root, const char* repo, const ms_pull_options* options,
                       ms_pull_result** out);

typedef enum ms_pull_field {
  MS_RESULT_REPO = 1,         /* string: "org/name" */
  MS_RESULT_REF = 2,          /* string: the revision asked for */
  MS_RESULT_COMMIT = 3,       /* string: the 40-hex commit now active */
  MS_RESULT_MODEL_DIR = 4,    /* string: absolute path of models/<org>/<name> */
  MS_RESULT_MARKER = 5,       /* string: absolute path of the marker */
  MS_RESULT_MARKER_NOTE = 6,  /* string: why no marker was written ("" when it was) */
  MS_RESULT_FILES = 20,       /* number */
  MS_RESULT_BYTES_TOTAL = 21,
  MS_RESULT_BYTES_FETCHED = 22, /* body bytes received by this pull */
  MS_RESULT_BYTES_REUSED = 23,  /* satisfied from what was already on disk */
  MS_RESULT_UP_TO_DATE = 24,    /* 1: nothing had to change */
  MS_RESULT_MARKER_WRITTEN = 25 /* 1: the marker exists: the model is ready to load */
} ms_pull_field;

/* A string field ("" for a number field). Lives as long as the result. */
MS_API const char* ms_pull_result_string(const ms_pull_result* result, ms_pull_field field);
/* A number field (0 for a string field). */
MS_API uint64_t ms_pull_result_number(const ms_pull_result* result, ms_pull_field field);
/* The whole result as the "done" event of `pull --json` (docs/json/pull.schema.json). */
MS_API const char* ms_pull_result_json(const ms_pull_result* result);
MS_API void ms_pull_result_free(ms_pull_result* result);

/* ---- Reading the root (no network) ------------------------------------------------------
 * Each returns a JSON document in *json_out (free with ms_free); NULL on failure. */

/* The installed models: `modelsync ls --json` (docs/json/ls.schema.json). A path that is no
 * root yet gives an empty list. */
MS_API ms_code ms_ls_json(ms_root* root, char** json_out);
/* Every repo's state, or one repo's (repo NULL = all): `modelsync status --json`
 * (docs/json/status.schema.json; "daemon" is null: ask the daemon with the command line). */
MS_API ms_code ms_status_json(ms_root* root, const char* repo, char** json_out);

/* What a local model is: revision, files, model type, quantization, tensors: `modelsync
 * inspect --json` (docs/json/inspect.schema.json). MS_ERR_NOT_FOUND when not installed. */
MS_API ms_code ms_inspect_json(ms_root* root, const char* repo, char** json_out);
/* The curated models known to load (no root, no network): a JSON array of the objects
 * `modelsync catalog --json` prints (docs/json/catalog.schema.json). */
MS_API ms_code ms_catalog_json(char** json_out);

/* The event log in order (no network, no lock): each event as one line of `modelsync log
 * --json` ({"seq", "time_ms", "time", "kind", "event"}), and each run of events compacted
 * away by gc as {"compacted": {"first", "last", "events"}}. from_seq: the first event (0 or 1
 * = the start); repo: only events about it (NULL = all); since_ms: only events at or after
 * this Unix time in ms (0 = all). fn returns 0 to go on, non-zero to stop (then MS_OK). */
typedef int (*ms_line_fn)(const char* json_line, void* user);
MS_API ms_code ms_log(ms_root* root, uint64_t from_seq, const char* repo, int64_t since_ms,
                      ms_line_fn fn, void* user);

/* What updating repo to revision (NULL = "main") would change, changing nothing:
 * `modelsync diff --json` (docs/json/diff.schema.json). local = 1 compares with a revision
 * already in the log and sends no request (also when the configuration is offline).
 * A repo the root does not hold yet diffs from nothing (every file added); with local it
 * is MS_ERR_NOT_FOUND, as is a local revision the log does not know. */
MS_API ms_code ms_diff_json(ms_root* root, const char* repo, const char* revision, int local,
                            char** json_out);

/* ---- Keeping it true -------------------------------------------------------------------*/

/* Re-hashes the files of repo (NULL = every repo) against the log. With repair, fetches
 * what is missing or damaged. *json_out (may be NULL): {"repos", "files", "bytes_hashed",
 * "damaged", "repaired", "issues": [{"kind", "repo", "path", "detail"}]}. MS_ERR_DAMAGED
 * when damage remains; cancel may be NULL. */
MS_API ms_code ms_verify(ms_root* root, const char* repo, int repair, ms_cancel* cancel,
                         char** json_out);
/* Removes repo's model directory and marker (the user's own files in it are kept) and stops
 * tracking it. MS_ERR_NOT_FOUND when the root holds no such repo. */
MS_API ms_code ms_remove(ms_root* root, const char* repo);
/* Frees blobs and partial downloads nothing refers to, and compacts the log. dry_run = 1
 * only counts. *bytes_freed (may be NULL): what was (or would be) freed. */
MS_API ms_code ms_gc(ms_root* root, int dry_run, uint64_t* bytes_freed);
/* Rebuilds models/ and the markers from the log and the blobs; with fetch, downloads what
 * the blobs lack. MS_ERR_DAMAGED when a model stays incomplete. */
MS_API ms_code ms_rebuild(ms_root* root, int fetch);

/* Adopts a model directory the caller already has: runs the model checks, stores its files
 * as verified blobs, lays it out under models/<repo>/ and writes the marker model_id; status,
 * verify and rebuild then treat it as pulled. repo NULL = "local/<model_id>". *json_out (may
 * be NULL): `modelsync add-local --json` (docs/json/add-local.schema.json).
 * MS_ERR_INVALID_ARGUMENT when the directory is no loadable model. */
MS_API ms_code ms_add_local(ms_root* root, const char* dir, const char* model_id,
                            const char* repo, char** json_out);

/* ---- Watching --------------------------------------------------------------------------*/

/* Adds repo (at revision, NULL = "main"; model_id NULL = default) to the watch list that
 * ms_sync and the daemon keep current. */
MS_API ms_code ms_track(ms_root* root, const char* repo, const char* revision,
                        const char* model_id);
/* Removes repo from the watch list (its files stay). */
MS_API ms_code ms_untrack(ms_root* root, const char* repo);
/* One pass over the watch list: each tracked repo is pulled (an update only when its
 * revision moved; a repo tracked with `modelsync track --convert` is converted again when
 * it moved). fn/user: events of every pull, as for ms_pull (may be NULL); cancel may be
 * NULL. *json_out (may be NULL): [{"repo", "ok", "up_to_date", "commit", "converted",
 * "message"}].
 * MS_ERR_NETWORK (or the first failure's code) when any repo failed; the others still ran. */
MS_API ms_code ms_sync(ms_root* root, ms_event_fn fn, void* user, ms_cancel* cancel,
                       char** json_out);

/* ---- The daemon ------------------------------------------------------------------------
 * The daemon runs as its own process (`modelsync daemon`, or the systemd / launchd units
 * that `cmake --install` puts in share/): one per root, syncing the watch list on schedule.
 * ms_sync is the same pass, in this process. This asks a running daemon something over its
 * control socket: request "status" (its live state, as `modelsync status --json` shows under
 * "daemon"), "sync-now" (a pass now; the reply is the state after it), "reload" (re-read the
 * watch list), "rate 10MB" (its download cap, "0" = none). *json_out: the daemon's JSON reply. MS_ERR_NOT_FOUND when no daemon runs on root. */
MS_API ms_code ms_daemon_request(ms_root* root, const char* request, char** json_out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MODELSYNC_MODELSYNC_H */
