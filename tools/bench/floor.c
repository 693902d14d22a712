// floor: what the least a verified download of one file over HTTP costs in CPU on this
// machine, as a yardstick for modelsync's cold pull (issue 20: <= 1.1 CPU-s per GiB). It
// fetches bytes [0, size) of URL (the CDN URL the hub redirects to) in ranges over several
// connections and, with --hash, runs a thread that SHA-256-hashes `size` bytes with OpenSSL
// (what verification costs, from a 1 MiB buffer: no waiting on the network), then prints its
// own user+sys CPU seconds and wall seconds. It writes nothing to disk, keeps no log and
// checks nothing: every figure is a floor, not a competitor. Run by tools/bench/floor.sh.
//
//   floor URL SIZE curl drop|copy|stream CONNECTIONS [--hash]
//       libcurl's multi interface (as modelsync), 4 MiB ranges, CONNECTIONS at a time, 512 KiB
//       receive buffers; the write callback drops the bytes, copies them (memcpy) into a 32 MiB
//       ring, or copies them with streaming stores (as modelsync's base/copy.h).
//   floor - SIZE none - 0 --hash
//       the hashing thread alone.
//   floor URL SIZE raw drop|copy|direct CONNECTIONS [--hash]
//       plain sockets, one thread per connection, one HTTP/1.1 range request each; recv into a
//       512 KiB buffer and drop, recv there and memcpy into the ring, or recv straight into the
//       ring (what a reader of our own into the window's blocks would do).
#include <arpa/inet.h>
#include <curl/curl.h>
#include <emmintrin.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kRing = 32 << 20, kBuf = 512 << 10, kRange = 4 << 20 };
static char* ring;
static size_t total;
static int conns;
static enum { kDrop, kCopy, kStream, kDirect } mode;

static void die(const char* what) {
  fprintf(stderr, "floor: %s\n", what);
  exit(1);
}

static void stream_copy(char* d, const char* s, size_t n) {
  size_t head = (16 - (uintptr_t)d % 16) % 16;
  if (head > n) head = n;
  memcpy(d, s, head);
  d += head, s += head, n -= head;
  for (; n >= 64; d += 64, s += 64, n -= 64) {
    __m128i a = _mm_loadu_si128((const __m128i*)s), b = _mm_loadu_si128((const __m128i*)(s + 16));
    __m128i c = _mm_loadu_si128((const __m128i*)(s + 32)), e = _mm_loadu_si128((const __m128i*)(s + 48));
    _mm_stream_si128((__m128i*)d, a), _mm_stream_si128((__m128i*)(d + 16), b);
    _mm_stream_si128((__m128i*)(d + 32), c), _mm_stream_si128((__m128i*)(d + 48), e);
  }
  memcpy(d, s, n);
  _mm_sfence();
}

// Puts n bytes received for file offset `off` into the ring (wrapping), as `mode` says.
static void keep(size_t off, const char* p, size_t n) {
  while (n > 0 && mode != kDrop) {
    size_t at = off % kRing, k = n < kRing - at ? n : kRing - at;
    if (mode == kStream) stream_copy(ring + at, p, k);
    else memcpy(ring + at, p, k);
    off += k, p += k, n -= k;
  }
}

static void* hash_thread(void* arg) {
  (void)arg;
  char* b = malloc(1 << 20);
  if (!b) die("out of memory");
  memset(b, 1, 1 << 20);
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  EVP_DigestInit_ex(c, EVP_sha256(), NULL);
  for (size_t done = 0; done < total; done += 1 << 20) {
    size_t n = total - done < (1u << 20) ? total - done : 1u << 20;
    EVP_DigestUpdate(c, b, n);
  }
  unsigned char md[32];
  unsigned len;
  EVP_DigestFinal_ex(c, md, &len);
  EVP_MD_CTX_free(c);
  free(b);
  return NULL;
}

// ---- libcurl ---------------------------------------------------------------------------------
struct Fetch { size_t next; };
static size_t on_body(char* p, size_t size, size_t n, void* user) {
  struct Fetch* f = user;
  keep(f->next, p, size * n);
  f->next += size * n;
  return size * n;
}

static void run_curl(const char* url) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conns);
  size_t next = 0, ranges = (total + kRange - 1) / kRange;
  struct Fetch* fetches = calloc(ranges, sizeof *fetches);
  int running = 0, k = 0;
  for (;;) {
    while (running < conns && next < total) {
      size_t end = next + kRange < total ? next + kRange : total;
      char range[64];
      snprintf(range, sizeof range, "%zu-%zu", next, end - 1);
      CURL* e = curl_easy_init();
      fetches[k].next = next;
      curl_easy_setopt(e, CURLOPT_URL, url);
      curl_easy_setopt(e, CURLOPT_RANGE, range);
      curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)kBuf);
      curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
      curl_easy_setopt(e, CURLOPT_WRITEDATA, &fetches[k++]);
      curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
      curl_multi_add_handle(m, e);
      next = end;
      ++running;
    }
    int still, queued;
    curl_multi_perform(m, &still);
    for (CURLMsg* msg; (msg = curl_multi_info_read(m, &queued));) {
      if (msg->msg != CURLMSG_DONE) continue;
      if (msg->data.result != CURLE_OK) die(curl_easy_strerror(msg->data.result));
      curl_multi_remove_handle(m, msg->easy_handle);
      curl_easy_cleanup(msg->easy_handle);
      --running;
    }
    if (running == 0 && next >= total) break;
    curl_multi_poll(m, NULL, 0, 100, NULL);
  }
  curl_multi_cleanup(m);
  free(fetches);
}

// ---- plain sockets ---------------------------------------------------------------------------
static char host[256], path[4096];
static int port;

static void* raw_reader(void* arg) {
  long i = (long)arg;
  size_t per = total / conns, begin = i * per, end = i == conns - 1 ? total : begin + per;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) die("raw mode needs a numeric IPv4 host");
  if (connect(s, (struct sockaddr*)&sa, sizeof sa) != 0) die("cannot connect");
  char req[8192];
  int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nRange: bytes=%zu-%zu\r\n\r\n",
                   path, host, port, begin, end - 1);
  if (send(s, req, n, 0) != n) die("send failed");
  char* buf = malloc(kBuf + 1);
  size_t have = 0, off = begin;
  char* body = NULL;
  while (!body) {  // the head, and whatever of the body came with it
    ssize_t r = recv(s, buf + have, 4096 < kBuf - have ? 4096 : kBuf - have, 0);
    if (r <= 0) die("connection closed before the head");
    have += r;
    buf[have] = 0;
    if (strncmp(buf, "HTTP/1.1 206", 12) != 0 && have >= 12) die("the server did not answer 206");
    char* p = strstr(buf, "\r\n\r\n");
    if (p) body = p + 4;
  }
  size_t first = buf + have - body;
  keep(off, body, first);
  off += first;
  while (off < end) {
    size_t want = end - off < kBuf ? end - off : kBuf;
    ssize_t r;
    if (mode == kDirect) {
      size_t at = off % kRing;
      if (want > kRing - at) want = kRing - at;
      r = recv(s, ring + at, want, 0);
    } else {
      r = recv(s, buf, want, 0);
      if (r > 0) keep(off, buf, r);
    }
    if (r <= 0) die("connection closed mid-body");
    off += r;
  }
  close(s);
  free(buf);
  return NULL;
}

static void run_raw(const char* url) {
  if (sscanf(url, "http://%255[^:/]:%d%4095s", host, &port, path) != 3) die("raw mode needs http://HOST:PORT/PATH");
  pthread_t t[64];
  if (conns > 64) die("at most 64 connections");
  for (long i = 0; i < conns; ++i) pthread_create(&t[i], NULL, raw_reader, (void*)i);
  for (int i = 0; i < conns; ++i) pthread_join(t[i], NULL);
}

static double seconds(struct timeval tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

int main(int argc, char** argv) {
  if (argc < 6) die("usage: floor URL SIZE curl|raw|none drop|copy|stream|direct CONNECTIONS [--hash]");
  const char* url = argv[1];
  total = strtoull(argv[2], NULL, 10);
  const int curl = strcmp(argv[3], "curl") == 0, none = strcmp(argv[3], "none") == 0;
  if (!curl && !none && strcmp(argv[3], "raw") != 0) die("the transport is curl, raw or none");
  const char* m = none ? "drop" : argv[4];
  mode = !strcmp(m, "drop") ? kDrop : !strcmp(m, "copy") ? kCopy : !strcmp(m, "stream") ? kStream
       : !strcmp(m, "direct") ? kDirect : (die("mode: drop, copy, stream or direct"), kDrop);
  if ((mode == kDirect && curl) || (mode == kStream && !curl)) die("direct is raw's, stream is curl's");
  conns = atoi(argv[5]);
  if ((conns < 1 && !none) || total == 0) die("CONNECTIONS and SIZE must be positive");
  const int hash = argc > 6 && strcmp(argv[6], "--hash") == 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  ring = aligned_alloc(2 << 20, kRing);  // as modelsync's window: touched before the fetches
  if (!ring) die("out of memory");
  madvise(ring, kRing, MADV_HUGEPAGE);
  memset(ring, 0, kRing);
  pthread_t h;
  if (hash) pthread_create(&h, NULL, hash_thread, NULL);
  if (curl) run_curl(url);
  else if (!none) run_raw(url);
  if (hash) pthread_join(h, NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("%.3f %.3f\n", seconds(ru.ru_utime) + seconds(ru.ru_stime),
         (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
