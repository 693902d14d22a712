/* The C API, driven from C99 against the hub emulator (tests/capi_test.sh starts it and
 * passes its URL). Linked against libmodelsync.so; under ASan in the sanitizer build, so a
 * leak or a bad free across the boundary fails it. Each CHECK prints the API's own error.
 *
 * Usage: capi_test HUB_URL WORK_DIR  (the emulator serves mlx-community/Tiny-Model-4bit,
 * its CDN throttled so that a pull lasts long enough to be cancelled). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modelsync/modelsync.h"

static int failures = 0;

#define CHECK(cond)                                                                        \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; last error: [%s] %s\n", __FILE__, __LINE__, \
              #cond, ms_last_error_kind(), ms_last_error());                               \
      ++failures;                                                                          \
    }                                                                                      \
  } while (0)

static const char* kRepo = "mlx-community/Tiny-Model-4bit";

static int exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* What the event callback saw, in order. */
struct seen {
  int resolved_at, first_progress_at, file_done_at, n;
  int files_done;
  uint64_t last_bytes;
  int monotonic;
  ms_cancel* cancel_on_progress; /* fired a third of the way, when set */
  pthread_mutex_t mu;
};

static void on_event(const ms_event* e, void* user) {
  struct seen* s = (struct seen*)user;
  pthread_mutex_lock(&s->mu);
  ++s->n;
  switch (e->kind) {
    case MS_EVENT_RESOLVED:
      if (!s->resolved_at) s->resolved_at = s->n;
      if (strcmp(e->repo, kRepo) != 0 || strlen(e->commit) != 40) s->monotonic = 0;
      break;
    case MS_EVENT_PROGRESS:
      if (!s->first_progress_at) s->first_progress_at = s->n;
      if (e->bytes_done < s->last_bytes || e->bytes_done > e->bytes_total) s->monotonic = 0;
      s->last_bytes = e->bytes_done;
      /* A third of the way: the weights file (the small files are a few KB) has bytes on
       * disk, which a cancel keeps. The first bytes alone may be a small file's, held in
       * memory until it is whole and verified, which a cancel drops. */
      if (s->cancel_on_progress && e->bytes_done * 3 >= e->bytes_total)
        ms_cancel_fire(s->cancel_on_progress);
      break;
    case MS_EVENT_FILE_DONE:
      if (!s->file_done_at) s->file_done_at = s->n;
      ++s->files_done;
      break;
    default:
      break;
  }
  pthread_mutex_unlock(&s->mu);
}

static void seen_init(struct seen* s) {
  memset(s, 0, sizeof *s);
  s->monotonic = 1;
  pthread_mutex_init(&s->mu, NULL);
}

static ms_root* open_root(const char* path, const char* hub) {
  ms_config* c = NULL;
  ms_root* r = NULL;
  CHECK(ms_config_new(0, &c) == MS_OK);
  CHECK(ms_config_set(c, MS_OPT_ENDPOINT, hub) == MS_OK);
  CHECK(ms_config_set(c, MS_OPT_CONNECTIONS, "4") == MS_OK);
  CHECK(ms_root_open(path, c, &r) == MS_OK);
  ms_config_free(c);
  return r;
}

struct bg_pull {
  ms_root* root;
  ms_code code;
};

struct lines {
  int n, stop_after, first_ok;
};

static int on_line(const char* line, void* user) {
  struct lines* l = (struct lines*)user;
  if (l->n == 0) l->first_ok = strncmp(line, "{\"seq\":1,", 8) == 0;
  ++l->n;
  return l->stop_after > 0 && l->n >= l->stop_after;
}

static void* pull_thread(void* arg) {
  struct bg_pull* b = (struct bg_pull*)arg;
  b->code = ms_pull(b->root, kRepo, NULL, NULL);
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: capi_test HUB_URL WORK_DIR\n");
    return 2;
  }
  const char* hub = argv[1];
  if (strlen(argv[2]) > 2000) {
    fprintf(stderr, "capi_test: WORK_DIR is too long\n");
    return 2;
  }
  char root_a[2048], root_b[2048], path[4200];
  snprintf(root_a, sizeof root_a, "%s/a", argv[2]);
  snprintf(root_b, sizeof root_b, "%s/b", argv[2]);

  /* Version and codes. */
  CHECK(strcmp(ms_version(), MS_VERSION_STRING) == 0);
  CHECK(ms_api_version() == MS_API_VERSION);
  CHECK(strcmp(ms_code_name(MS_ERR_NOT_FOUND), "not_found") == 0);
  CHECK(strcmp(ms_code_name((ms_code)77), "unknown") == 0);

  /* Bad configuration: refused, said, nothing changed. */
  ms_config* c = NULL;
  CHECK(ms_config_new(0, &c) == MS_OK);
  CHECK(ms_config_set(c, MS_OPT_ENDPOINT, "ftp://hub.example") == MS_ERR_INVALID_ARGUMENT);
  CHECK(strstr(ms_last_error(), "ftp://hub.example") != NULL);
  CHECK(strcmp(ms_last_error_kind(), "InvalidArgument") == 0);
  CHECK(ms_config_set(c, MS_OPT_CONNECTIONS, "lots") == MS_ERR_INVALID_ARGUMENT);
  CHECK(ms_config_set(c, MS_OPT_MAX_RATE, "fast") == MS_ERR_INVALID_ARGUMENT);
  CHECK(ms_config_set(c, MS_OPT_HTTPS_PROXY, "ftp://p:1") == MS_ERR_INVALID_ARGUMENT);
  CHECK(ms_config_set(c, MS_OPT_CA_BUNDLE, "/nonexistent/ca.pem") == MS_ERR_INVALID_ARGUMENT);
  CHECK(ms_config_set(c, MS_OPT_MAX_RATE, "0") == MS_OK);
  CHECK(strcmp(ms_last_error(), "") == 0); /* a success clears it */
  ms_config_free(c);

  ms_root* a = open_root(root_a, hub);
  CHECK(strcmp(ms_root_path(a), root_a) == 0);

  /* A root that does not exist yet: an empty list, not an error. */
  char* json = NULL;
  CHECK(ms_ls_json(a, &json) == MS_OK);
  CHECK(json != NULL && strstr(json, "\"models\":[]") != NULL);
  ms_free(json);

  /* A pull cancelled once bytes move: MS_ERR_CANCELLED, the bytes kept. */
  ms_cancel* cancel = NULL;
  CHECK(ms_cancel_new(&cancel) == MS_OK);
  ms_pull_options* po = NULL;
  CHECK(ms_pull_options_new(&po) == MS_OK);
  struct seen s1;
  seen_init(&s1);
  s1.cancel_on_progress = cancel;
  ms_pull_options_on_event(po, on_event, &s1);
  ms_pull_options_cancel(po, cancel);
  ms_pull_result* res = NULL;
  CHECK(ms_pull(a, kRepo, po, &res) == MS_ERR_CANCELLED);
  CHECK(res == NULL);
  CHECK(strcmp(ms_last_error_kind(), "Cancelled") == 0);
  CHECK(ms_cancel_fired(cancel) == 1);
  snprintf(path, sizeof path, "%s/Tiny-Model-4bit", root_a);
  CHECK(!exists(path)); /* no marker for an incomplete model */

  /* The same pull again resumes: fewer bytes than the whole, events in order. */
  ms_cancel_reset(cancel);
  struct seen s2;
  seen_init(&s2);
  ms_pull_options_on_event(po, on_event, &s2);
  CHECK(ms_pull_options_set(po, MS_PULL_REVISION, "main") == MS_OK);
  CHECK(ms_pull(a, kRepo, po, &res) == MS_OK);
  CHECK(res != NULL);
  if (res) {
    CHECK(strlen(ms_pull_result_string(res, MS_RESULT_COMMIT)) == 40);
    CHECK(strcmp(ms_pull_result_string(res, MS_RESULT_REPO), kRepo) == 0);
    CHECK(strcmp(ms_pull_result_string(res, MS_RESULT_REF), "main") == 0);
    CHECK(ms_pull_result_number(res, MS_RESULT_MARKER_WRITTEN) == 1);
    CHECK(exists(ms_pull_result_string(res, MS_RESULT_MARKER)));
    CHECK(exists(ms_pull_result_string(res, MS_RESULT_MODEL_DIR)));
    const uint64_t total = ms_pull_result_number(res, MS_RESULT_BYTES_TOTAL);
    const uint64_t fetched = ms_pull_result_number(res, MS_RESULT_BYTES_FETCHED);
    CHECK(total > 0);
    CHECK(fetched < total); /* resumed, not restarted */
    /* A file-done event for each file this run finished (the cancelled run finished some). */
    CHECK(s2.files_done >= 1);
    CHECK((uint64_t)s2.files_done <= ms_pull_result_number(res, MS_RESULT_FILES));
    CHECK(strstr(ms_pull_result_json(res), "\"event\":\"done\"") != NULL);
    ms_pull_result_free(res);
  }
  CHECK(s2.resolved_at == 1);
  CHECK(s2.first_progress_at > s2.resolved_at);
  CHECK(s2.file_done_at > s2.resolved_at);
  CHECK(s2.monotonic);

  /* Up to date now; a revision given twice, differently, is refused. */
  CHECK(ms_pull(a, kRepo, NULL, &res) == MS_OK);
  if (res) {
    CHECK(ms_pull_result_number(res, MS_RESULT_UP_TO_DATE) == 1);
    CHECK(ms_pull_result_number(res, MS_RESULT_BYTES_FETCHED) == 0);
    ms_pull_result_free(res);
  }
  CHECK(ms_pull(a, "mlx-community/Tiny-Model-4bit@v9", po, NULL) == MS_ERR_INVALID_ARGUMENT);
  ms_pull_options_free(po);

  /* Errors of every class the hub can cause, said. */
  CHECK(ms_pull(a, "nobody/no-such-model", NULL, NULL) == MS_ERR_NOT_FOUND);
  CHECK(strcmp(ms_last_error_kind(), "NotFound") == 0);
  CHECK(strstr(ms_last_error(), "nobody/no-such-model") != NULL);
  CHECK(ms_pull(a, "", NULL, NULL) == MS_ERR_INVALID_ARGUMENT);
  CHECK(ms_pull(NULL, kRepo, NULL, NULL) == MS_ERR_INVALID_ARGUMENT);

  /* Reading the root. */
  CHECK(ms_ls_json(a, &json) == MS_OK);
  CHECK(json && strstr(json, "\"repo\":\"mlx-community/Tiny-Model-4bit\"") != NULL);
  ms_free(json);
  CHECK(ms_status_json(a, kRepo, &json) == MS_OK);
  CHECK(json && strstr(json, "\"state\":\"complete\"") != NULL);
  CHECK(json && strstr(json, "\"daemon\":null") != NULL);
  ms_free(json);
  CHECK(ms_status_json(a, "Tiny-Model-4bit", &json) == MS_OK); /* a model id works too */
  ms_free(json);
  CHECK(ms_inspect_json(a, kRepo, &json) == MS_OK);
  CHECK(json && strstr(json, "\"is_model\":true") != NULL);
  ms_free(json);
  CHECK(ms_inspect_json(a, "nobody/nothing", &json) == MS_ERR_NOT_FOUND);
  CHECK(ms_catalog_json(&json) == MS_OK);
  CHECK(json && json[0] == '[' && strstr(json, "\"repo\":\"mlx-community/") != NULL);
  ms_free(json);
  /* The log, as `log --json` lines; the callback may stop it. */
  struct lines all = {0, 0, 0}, three = {0, 3, 0}, other = {0, 0, 0};
  CHECK(ms_log(a, 0, NULL, 0, on_line, &all) == MS_OK);
  CHECK(all.n > 10 && all.first_ok);
  CHECK(ms_log(a, 1, NULL, 0, on_line, &three) == MS_OK);
  CHECK(three.n == 3);
  CHECK(ms_log(a, 0, "fixtures/versions", 0, on_line, &other) == MS_OK);
  CHECK(other.n == 0);
  CHECK(ms_log(a, 0, NULL, 0, NULL, NULL) == MS_ERR_INVALID_ARGUMENT);
  /* No daemon runs on this root. */
  CHECK(ms_daemon_request(a, "status", &json) == MS_ERR_NOT_FOUND);
  CHECK(ms_daemon_request(a, "explode", &json) == MS_ERR_INVALID_ARGUMENT);
  /* What an update would change: nothing, asked of the hub and of the log alone. */
  CHECK(ms_diff_json(a, kRepo, NULL, 0, &json) == MS_OK);
  CHECK(json && strstr(json, "\"identical\":true") != NULL);
  CHECK(json && strstr(json, "\"remote\":true") != NULL);
  ms_free(json);
  CHECK(ms_diff_json(a, kRepo, NULL, 1, &json) == MS_OK);
  CHECK(json && strstr(json, "\"remote\":false") != NULL);
  ms_free(json);
  /* A repo the root does not hold: everything would be added; from the log: unknown. */
  CHECK(ms_diff_json(a, "fixtures/versions", NULL, 0, &json) == MS_OK);
  CHECK(json && strstr(json, "\"from_commit\":\"\"") != NULL);
  CHECK(json && strstr(json, "\"removed\":0") != NULL);
  ms_free(json);
  json = NULL;
  CHECK(ms_diff_json(a, "fixtures/versions", NULL, 1, &json) == MS_ERR_NOT_FOUND);
  CHECK(json == NULL);

  /* Verify finds a damaged byte; repair fetches it again. */
  CHECK(ms_verify(a, NULL, 0, NULL, &json) == MS_OK);
  CHECK(json && strstr(json, "\"damaged\":false") != NULL);
  ms_free(json);
  snprintf(path, sizeof path, "%s/models/%s/model.safetensors", root_a, kRepo);
  FILE* f = fopen(path, "r+b");
  CHECK(f != NULL);
  if (f) {
    fseek(f, 4096, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, 4096, SEEK_SET);
    fputc(ch ^ 0xFF, f);
    fclose(f);
  }
  CHECK(ms_verify(a, kRepo, 0, NULL, &json) == MS_ERR_DAMAGED);
  CHECK(json && strstr(json, "model.safetensors") != NULL);
  ms_free(json);
  CHECK(ms_verify(a, kRepo, 1, NULL, NULL) == MS_OK);
  CHECK(ms_verify(a, kRepo, 0, NULL, NULL) == MS_OK);

  /* Two roots in one process: a pull into b on another thread while a is read here. */
  ms_root* b = open_root(root_b, hub);
  pthread_t t;
  struct bg_pull bg = {b, MS_ERR_OTHER};
  CHECK(pthread_create(&t, NULL, pull_thread, &bg) == 0);
  for (int i = 0; i < 20; ++i) {
    CHECK(ms_ls_json(a, &json) == MS_OK);
    ms_free(json);
  }
  pthread_join(t, NULL);
  CHECK(bg.code == MS_OK);
  snprintf(path, sizeof path, "%s/Tiny-Model-4bit", root_b);
  CHECK(exists(path));

  /* Watching: track, one sync pass, untrack. */
  CHECK(ms_track(b, kRepo, NULL, NULL) == MS_OK);
  struct seen s3;
  seen_init(&s3);
  CHECK(ms_sync(b, on_event, &s3, NULL, &json) == MS_OK);
  CHECK(json && strstr(json, "\"ok\":true") != NULL);
  CHECK(json && strstr(json, "\"up_to_date\":true") != NULL);
  ms_free(json);
  CHECK(s3.resolved_at == 1);
  CHECK(ms_untrack(b, kRepo) == MS_OK);
  CHECK(ms_sync(b, NULL, NULL, NULL, &json) == MS_OK);
  CHECK(json && strcmp(json, "[]") == 0);
  ms_free(json);

  /* Rebuild after the marker and a file are gone; remove; gc frees the blobs. */
  snprintf(path, sizeof path, "%s/Tiny-Model-4bit", root_b);
  CHECK(unlink(path) == 0);
  CHECK(ms_rebuild(b, 0) == MS_OK);
  CHECK(exists(path));
  CHECK(ms_remove(b, kRepo) == MS_OK);
  CHECK(!exists(path));
  CHECK(ms_remove(b, kRepo) == MS_ERR_NOT_FOUND);
  uint64_t freed = 0;
  CHECK(ms_gc(b, 1, &freed) == MS_OK);
  CHECK(freed > 0);
  uint64_t freed2 = 0;
  CHECK(ms_gc(b, 0, &freed2) == MS_OK);
  CHECK(freed2 == freed);
  CHECK(ms_gc(b, 0, &freed2) == MS_OK);
  CHECK(freed2 == 0);

  /* Offline: a complete model is fine, a missing one is a network-class error. */
  ms_root* off = NULL;
  CHECK(ms_config_new(0, &c) == MS_OK);
  CHECK(ms_config_set(c, MS_OPT_ENDPOINT, hub) == MS_OK);
  CHECK(ms_config_set(c, MS_OPT_OFFLINE, "1") == MS_OK);
  CHECK(ms_root_open(root_a, c, &off) == MS_OK);
  ms_config_free(c);
  CHECK(ms_pull(off, kRepo, NULL, NULL) == MS_OK);
  CHECK(ms_pull(off, "fixtures/versions", NULL, NULL) == MS_ERR_NETWORK);
  CHECK(strcmp(ms_last_error_kind(), "Offline") == 0);

  /* Many open/close cycles leave nothing behind (ASan's leak check judges). */
  for (int i = 0; i < 1000; ++i) {
    ms_root* r = open_root(root_a, hub);
    ms_root_close(r);
  }

  ms_root_close(off);
  ms_root_close(b);
  ms_root_close(a);
  ms_cancel_free(cancel);
  ms_root_close(NULL);
  ms_free(NULL);
  if (failures) fprintf(stderr, "capi_test: %d check(s) failed\n", failures);
  else printf("capi_test: ok\n");
  return failures ? 1 : 0;
}
