/* SPDX-License-Identifier: MIT */
/* Resumable archive download (see the header). The partial file is only ever appended to at
 * the offset the server confirmed (Content-Range), so a resume can never splice two different
 * files silently: the .meta beside it records the URL and the server's validator (ETag or
 * Last-Modified), sent back as If-Range. */
#include "lcvm-download.h"
#include "lcvm-fd.h"
#include "config.h"
#include "lcvm-safe-io.h"
#include "lcvm-sha256-stream.h"
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BUFFER_SIZE          (512 * 1024)
#define MAX_BACKOFF_S        30
#define PROGRESS_INTERVAL_US (250 * G_TIME_SPAN_MILLISECOND)

G_DEFINE_QUARK(lcvm - download - error - quark, lcvm_download_error)

struct LcvmDownload {
  int dirfd;
  int fd;
  char *partial_name;
  char *meta_name;
  char *url;
  char *validator; /* ETag or Last-Modified of the file the partial bytes came from */
  guint64 connect_timeout, low_speed_limit, low_speed_time, retries;
  LcvmSha256 *sha; /* fed by the consumer: it reads every byte anyway, and the transfer
                    * thread then does no more work than `curl -o` */
  LcvmDownloadProgressFunc progress;
  gpointer progress_data;

  /* Transfer state of the current attempt (download thread only). */
  CURL *curl;
  guint64 offset; /* where this attempt's body starts */
  guint64 total;
  guint64 resumed_from;
  gboolean body_started;
  long status;
  char *header_validator;
  char *content_range;
  GError *write_error;
  gint64 last_progress_us;
  guint64 rate_bytes;
  gint64 rate_start_us;
  double rate;

  /* Shared with the consumer thread. */
  GMutex lock;
  GCond cond;
  guint64 committed;
  guint generation;
  gboolean finished;
  gboolean failed;
  gboolean aborted;
  guint64 reader_pos;
  guint reader_generation;
};

static void
global_init(void)
{
  static gsize once = 0;
  if (g_once_init_enter(&once)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_once_init_leave(&once, 1);
  }
}

static gboolean
errno_error(GError **error, int err, const char *what, const char *name)
{
  g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_LOCAL, "%s %s: %s%s", what, name,
              g_strerror(err),
              err == ENOSPC ? " (free some space in the image store and try again)" : "");
  return FALSE;
}

static void
read_meta(LcvmDownload *dl, char **url, char **validator)
{
  g_autofree char *text = NULL;
  if (!lcvm_read_file_at(dl->dirfd, dl->meta_name, 64 * 1024, &text, NULL, NULL))
    return;
  g_auto(GStrv) lines = g_strsplit(text, "\n", 3);
  if (g_strv_length(lines) < 2)
    return;
  *url = g_strdup(lines[0]);
  *validator = lines[1][0] ? g_strdup(lines[1]) : NULL;
}

static gboolean
write_meta(LcvmDownload *dl, GError **error)
{
  g_autofree char *text = g_strdup_printf("%s\n%s\n", dl->url, dl->validator ? dl->validator : "");
  g_autoptr(GError) local = NULL;
  if (lcvm_write_file_atomic_at(dl->dirfd, dl->meta_name, text, strlen(text), 0664, &local))
    return TRUE;
  g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_LOCAL, "%s", local->message);
  return FALSE;
}

LcvmDownload *
lcvm_download_new(int dirfd, const char *partial_name, const char *url, const LcvmConfig *config,
                  GError **error)
{
  global_init();
  g_autoptr(LcvmDownload) dl = g_new0(LcvmDownload, 1);
  g_mutex_init(&dl->lock);
  g_cond_init(&dl->cond);
  dl->dirfd = dirfd;
  dl->fd = -1;
  dl->partial_name = g_strdup(partial_name);
  dl->meta_name = g_strdup_printf("%s.meta", partial_name);
  dl->url = g_strdup(url);
  dl->connect_timeout = config->download_connect_timeout;
  dl->low_speed_limit = config->download_low_speed_limit;
  dl->low_speed_time = config->download_low_speed_time;
  dl->retries = config->download_retries;
  dl->sha = lcvm_sha256_new();
  dl->fd = openat(dirfd, partial_name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  struct stat st;
  if (dl->fd < 0 || fstat(dl->fd, &st) < 0) {
    errno_error(error, errno, "cannot open the partial download", partial_name);
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    errno_error(error, EINVAL, "the partial download is not a regular file:", partial_name);
    return NULL;
  }
  g_autofree char *old_url = NULL;
  read_meta(dl, &old_url, &dl->validator);
  dl->committed = (guint64)st.st_size;
  if (g_strcmp0(old_url, url) != 0 && dl->committed > 0) {
    if (ftruncate(dl->fd, 0) < 0) {
      errno_error(error, errno, "cannot truncate", partial_name);
      return NULL;
    }
    dl->committed = 0;
    g_clear_pointer(&dl->validator, g_free);
  }
  dl->resumed_from = dl->committed;
  dl->curl = curl_easy_init();
  if (dl->curl == NULL) {
    g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_LOCAL, "cannot initialise libcurl");
    return NULL;
  }
  return g_steal_pointer(&dl);
}

void
lcvm_download_set_progress(LcvmDownload *dl, LcvmDownloadProgressFunc func, gpointer user_data)
{
  dl->progress = func;
  dl->progress_data = user_data;
}

guint64
lcvm_download_resume_offset(LcvmDownload *dl)
{
  return dl->resumed_from;
}

char *
lcvm_download_finish_sha256(LcvmDownload *dl, GError **error)
{
  g_autofree char *buf = g_malloc(BUFFER_SIZE);
  for (;;) {
    gssize n = lcvm_download_follow(dl, buf, BUFFER_SIZE, error);
    if (n < 0)
      return NULL;
    if (n == 0)
      return lcvm_sha256_finish(dl->sha);
  }
}

/* Shared state changes, always under the lock and always announced. */
static void
publish(LcvmDownload *dl, guint64 committed, gboolean restart)
{
  g_mutex_lock(&dl->lock);
  dl->committed = committed;
  if (restart)
    dl->generation++;
  g_cond_broadcast(&dl->cond);
  g_mutex_unlock(&dl->lock);
}

static void
finish(LcvmDownload *dl, gboolean ok)
{
  g_mutex_lock(&dl->lock);
  dl->finished = ok;
  dl->failed = !ok;
  g_cond_broadcast(&dl->cond);
  g_mutex_unlock(&dl->lock);
}

static gboolean
is_aborted(LcvmDownload *dl)
{
  g_mutex_lock(&dl->lock);
  gboolean aborted = dl->aborted;
  g_mutex_unlock(&dl->lock);
  return aborted;
}

void
lcvm_download_abort(LcvmDownload *dl)
{
  g_mutex_lock(&dl->lock);
  dl->aborted = TRUE;
  g_cond_broadcast(&dl->cond);
  g_mutex_unlock(&dl->lock);
}

static gboolean
fail_follow(GError **error, LcvmDownloadError code, const char *message)
{
  g_set_error_literal(error, LCVM_DOWNLOAD_ERROR, code, message);
  return FALSE;
}

gssize
lcvm_download_follow(LcvmDownload *dl, void *buf, gsize len, GError **error)
{
  g_mutex_lock(&dl->lock);
  for (;;) {
    if (dl->generation != dl->reader_generation) {
      g_mutex_unlock(&dl->lock);
      fail_follow(error, LCVM_DOWNLOAD_ERROR_RESTARTED,
                  "the server sent the archive again from its start");
      return -1;
    }
    if (dl->aborted || dl->failed) {
      g_mutex_unlock(&dl->lock);
      fail_follow(error, LCVM_DOWNLOAD_ERROR_ABORTED, "the download stopped");
      return -1;
    }
    if (dl->reader_pos < dl->committed || dl->finished)
      break;
    g_cond_wait(&dl->cond, &dl->lock);
  }
  gsize want = (gsize)MIN((guint64)len, dl->committed - dl->reader_pos);
  guint64 pos = dl->reader_pos;
  g_mutex_unlock(&dl->lock);
  if (want == 0)
    return 0;
  ssize_t n;
  do
    n = pread(dl->fd, buf, want, (off_t)pos);
  while (n < 0 && errno == EINTR);
  /* The writer may have started over (truncate) while we read: what we read then belongs to
   * neither body, so the restart wins over whatever pread returned. */
  g_mutex_lock(&dl->lock);
  gboolean restarted = dl->generation != dl->reader_generation;
  if (!restarted && n > 0)
    dl->reader_pos += (guint64)n;
  g_mutex_unlock(&dl->lock);
  if (restarted) {
    fail_follow(error, LCVM_DOWNLOAD_ERROR_RESTARTED,
                "the server sent the archive again from its start");
    return -1;
  }
  if (n <= 0) {
    errno_error(error, n < 0 ? errno : EIO, "cannot read back", dl->partial_name);
    return -1;
  }
  lcvm_sha256_update(dl->sha, buf, (gsize)n);
  return n;
}

void
lcvm_download_rewind(LcvmDownload *dl)
{
  g_mutex_lock(&dl->lock);
  dl->reader_pos = 0;
  dl->reader_generation = dl->generation;
  g_mutex_unlock(&dl->lock);
  lcvm_sha256_reset(dl->sha);
}

void
lcvm_download_discard(LcvmDownload *dl)
{
  unlinkat(dl->dirfd, dl->partial_name, 0);
  unlinkat(dl->dirfd, dl->meta_name, 0);
}

void
lcvm_download_free(LcvmDownload *dl)
{
  if (dl == NULL)
    return;
  lcvm_close_fdp(&dl->fd);
  if (dl->curl != NULL)
    curl_easy_cleanup(dl->curl);
  lcvm_sha256_free(dl->sha);
  g_clear_error(&dl->write_error);
  g_free(dl->partial_name);
  g_free(dl->meta_name);
  g_free(dl->url);
  g_free(dl->validator);
  g_free(dl->header_validator);
  g_free(dl->content_range);
  g_mutex_clear(&dl->lock);
  g_cond_clear(&dl->cond);
  g_free(dl);
}

/* ---- progress ---- */

static void
report(LcvmDownload *dl, gboolean done)
{
  gint64 now = g_get_monotonic_time();
  if (!done && now - dl->last_progress_us < PROGRESS_INTERVAL_US)
    return;
  if (now - dl->rate_start_us >= G_USEC_PER_SEC || done) {
    double secs = (double)(now - dl->rate_start_us) / G_USEC_PER_SEC;
    double sample = secs > 0 ? (double)dl->rate_bytes / secs : 0;
    dl->rate = dl->rate > 0 ? 0.5 * dl->rate + 0.5 * sample : sample;
    dl->rate_bytes = 0;
    dl->rate_start_us = now;
  }
  dl->last_progress_us = now;
  if (dl->progress == NULL)
    return;
  LcvmDownloadProgress p = {
    .received = dl->committed,
    .total = dl->total,
    .resumed_from = dl->resumed_from,
    .rate = dl->rate,
    .done = done,
  };
  dl->progress(&p, dl->progress_data);
}

static int
xferinfo_cb(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
  LcvmDownload *dl = data;
  if (is_aborted(dl))
    return 1;
  report(dl, FALSE);
  return 0;
}

/* ---- one HTTP attempt ---- */

static size_t
header_cb(char *buffer, size_t size, size_t nitems, void *data)
{
  LcvmDownload *dl = data;
  size_t len = size * nitems;
  g_autofree char *line = g_strstrip(g_strndup(buffer, len));
  if (g_str_has_prefix(line, "HTTP/")) {
    /* A new response (after a redirect or a 100): forget the previous one's headers. */
    g_clear_pointer(&dl->header_validator, g_free);
    g_clear_pointer(&dl->content_range, g_free);
    return len;
  }
  char *colon = strchr(line, ':');
  if (colon == NULL)
    return len;
  *colon = '\0';
  const char *value = g_strstrip(colon + 1);
  if (g_ascii_strcasecmp(line, "etag") == 0 && !g_str_has_prefix(value, "W/")) {
    g_free(dl->header_validator);
    dl->header_validator = g_strdup(value);
  } else if (g_ascii_strcasecmp(line, "last-modified") == 0 && dl->header_validator == NULL) {
    dl->header_validator = g_strdup(value);
  } else if (g_ascii_strcasecmp(line, "content-range") == 0) {
    g_free(dl->content_range);
    dl->content_range = g_strdup(value);
  }
  return len;
}

/* "bytes START-END/TOTAL": the body must start exactly where the partial file ends. */
static gboolean
check_content_range(LcvmDownload *dl)
{
  guint64 start = 0, end = 0, total = 0;
  if (dl->content_range == NULL ||
      sscanf(dl->content_range,
             "bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, &start, &end,
             &total) != 3 ||
      start != dl->offset) {
    g_set_error(&dl->write_error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_HTTP,
                "the server answered a resume at byte %" G_GUINT64_FORMAT
                " with Content-Range '%s'; delete the partial download and try again",
                dl->offset, dl->content_range ? dl->content_range : "");
    return FALSE;
  }
  dl->total = total;
  return TRUE;
}

/* The first body byte of an attempt decides where it goes. */
static gboolean
start_body(LcvmDownload *dl)
{
  curl_easy_getinfo(dl->curl, CURLINFO_RESPONSE_CODE, &dl->status);
  dl->body_started = TRUE;
  if (dl->status != 200 && dl->status != 206)
    return TRUE; /* an error page: discarded, judged after the transfer */
  if (dl->status == 206 && !check_content_range(dl))
    return FALSE;
  if (dl->status == 200) {
    curl_off_t length = -1;
    curl_easy_getinfo(dl->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    dl->total = length >= 0 ? (guint64)length : 0;
    if (dl->offset > 0) {
      /* No range support, or the file changed (If-Range): start over. The reader learns of
       * the restart before the file shrinks under it. */
      publish(dl, 0, TRUE);
      if (ftruncate(dl->fd, 0) < 0)
        return errno_error(&dl->write_error, errno, "cannot truncate", dl->partial_name);
      dl->offset = 0;
      dl->resumed_from = 0;
    }
  }
  g_free(dl->validator);
  dl->validator = g_strdup(dl->header_validator);
  return write_meta(dl, &dl->write_error);
}

static gboolean
write_all_at(int fd, const char *data, gsize len, guint64 offset)
{
  while (len > 0) {
    ssize_t n = pwrite(fd, data, len, (off_t)offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return FALSE;
    data += n;
    len -= (gsize)n;
    offset += (guint64)n;
  }
  return TRUE;
}

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *user_data)
{
  LcvmDownload *dl = user_data;
  size_t len = size * nmemb;
  if (!dl->body_started && !start_body(dl))
    return 0;
  if (dl->status != 200 && dl->status != 206)
    return len;
  if (is_aborted(dl))
    return 0;
  if (!write_all_at(dl->fd, data, len, dl->committed)) {
    errno_error(&dl->write_error, errno ? errno : EIO, "cannot write", dl->partial_name);
    return 0;
  }
  dl->rate_bytes += len;
  publish(dl, dl->committed + len, FALSE);
  return len;
}

static void
setup_attempt(LcvmDownload *dl, struct curl_slist **headers, char *errbuf)
{
  CURL *c = dl->curl;
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, dl->url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lium-cvm/" LCVM_VERSION);
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)BUFFER_SIZE);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)dl->connect_timeout);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)dl->low_speed_limit);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)dl->low_speed_time);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, dl);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, dl);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, dl);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  dl->offset = dl->committed;
  dl->body_started = FALSE;
  dl->status = 0;
  if (dl->offset > 0) {
    g_autofree char *range = g_strdup_printf("%" G_GUINT64_FORMAT "-", dl->offset);
    curl_easy_setopt(c, CURLOPT_RANGE, range);
    if (dl->validator != NULL) {
      g_autofree char *h = g_strdup_printf("If-Range: %s", dl->validator);
      *headers = curl_slist_append(*headers, h);
    }
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
}

static gboolean
status_is_transient(long status)
{
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
         status == 504;
}

static gboolean
curl_is_transient(CURLcode res)
{
  switch (res) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_GOT_NOTHING:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_SSL_CONNECT_ERROR:
    return TRUE;
  default:
    return FALSE;
  }
}

typedef enum {
  ATTEMPT_DONE,
  ATTEMPT_RETRY, /* transient; *error says why */
  ATTEMPT_FAILED,
} AttemptResult;

static AttemptResult
judge_attempt(LcvmDownload *dl, CURLcode res, const char *errbuf, GError **error)
{
  if (dl->write_error != NULL) {
    g_propagate_error(error, g_steal_pointer(&dl->write_error));
    return ATTEMPT_FAILED;
  }
  if (is_aborted(dl)) {
    g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_ABORTED, "download aborted");
    return ATTEMPT_FAILED;
  }
  long status = 0;
  curl_easy_getinfo(dl->curl, CURLINFO_RESPONSE_CODE, &status);
  if (res != CURLE_OK) {
    g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_INTERRUPTED, "%s",
                errbuf[0] ? errbuf : curl_easy_strerror(res));
    return curl_is_transient(res) ? ATTEMPT_RETRY : ATTEMPT_FAILED;
  }
  if (status == 416 && dl->offset > 0) {
    /* The partial file is not a prefix of what the server has: start over. */
    publish(dl, 0, TRUE);
    if (ftruncate(dl->fd, 0) < 0) {
      errno_error(error, errno, "cannot truncate", dl->partial_name);
      return ATTEMPT_FAILED;
    }
    dl->resumed_from = 0;
    g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_INTERRUPTED,
                "the server refused to resume (HTTP 416)");
    return ATTEMPT_RETRY;
  }
  if (status != 200 && status != 206) {
    g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_HTTP,
                "the server answered HTTP %ld for %s%s", status, dl->url,
                status == 404 ? ": check the image name or --url" : "");
    return status_is_transient(status) ? ATTEMPT_RETRY : ATTEMPT_FAILED;
  }
  if (dl->total > 0 && dl->committed != dl->total) {
    g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_INTERRUPTED,
                "the transfer ended after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " bytes",
                dl->committed, dl->total);
    return ATTEMPT_RETRY;
  }
  return ATTEMPT_DONE;
}

static AttemptResult
attempt(LcvmDownload *dl, GError **error)
{
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = NULL;
  setup_attempt(dl, &headers, errbuf);
  CURLcode res = curl_easy_perform(dl->curl);
  curl_slist_free_all(headers);
  return judge_attempt(dl, res, errbuf, error);
}

/* Sleeps the backoff, waking early when aborted. */
static void
backoff(LcvmDownload *dl, guint failures)
{
  guint secs = MIN(MAX_BACKOFF_S, 1u << MIN(failures - 1, 5u));
  gint64 until = g_get_monotonic_time() + (gint64)secs * G_USEC_PER_SEC;
  g_mutex_lock(&dl->lock);
  while (!dl->aborted && g_cond_wait_until(&dl->cond, &dl->lock, until))
    ;
  g_mutex_unlock(&dl->lock);
}

static gboolean
run_attempts(LcvmDownload *dl, GError **error)
{
  guint failures = 0;
  dl->rate_start_us = g_get_monotonic_time();
  for (;;) {
    g_autoptr(GError) local = NULL;
    guint64 before = dl->committed;
    AttemptResult r = attempt(dl, &local);
    if (r == ATTEMPT_DONE)
      return TRUE;
    if (dl->committed > before)
      failures = 0; /* progress: count only failures in a row */
    if (r == ATTEMPT_FAILED || ++failures > dl->retries) {
      if (local->code == LCVM_DOWNLOAD_ERROR_INTERRUPTED)
        g_prefix_error(&local,
                       "download of %s interrupted after %" G_GUINT64_FORMAT " bytes: ", dl->url,
                       dl->committed);
      g_propagate_error(error, g_steal_pointer(&local));
      return FALSE;
    }
    backoff(dl, failures);
  }
}

gboolean
lcvm_download_run(LcvmDownload *dl, GError **error)
{
  gboolean ok = run_attempts(dl, error);
  if (ok)
    report(dl, TRUE);
  finish(dl, ok);
  return ok;
}

/* ---- small resources ---- */

typedef struct {
  GByteArray *buf;
  gsize max;
} TextSink;

static size_t
text_cb(char *data, size_t size, size_t nmemb, void *user_data)
{
  TextSink *sink = user_data;
  size_t len = size * nmemb;
  if (sink->buf->len + len > sink->max)
    return 0;
  g_byte_array_append(sink->buf, (const guint8 *)data, (guint)len);
  return len;
}

char *
lcvm_download_text(const char *url, gsize max, const LcvmConfig *config, GError **error)
{
  global_init();
  CURL *c = curl_easy_init();
  g_autoptr(GByteArray) buf = g_byte_array_new();
  TextSink sink = { buf, max };
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "lium-cvm/" LCVM_VERSION);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)config->download_connect_timeout);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, (long)config->download_low_speed_limit);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)config->download_low_speed_time);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, text_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  CURLcode res = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (res == CURLE_WRITE_ERROR) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s is larger than %" G_GSIZE_FORMAT " bytes",
                url, max);
    return NULL;
  }
  if (res != CURLE_OK) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot fetch %s: %s", url,
                errbuf[0] ? errbuf : curl_easy_strerror(res));
    return NULL;
  }
  if (status == 404 || status == 410) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s: HTTP %ld", url, status);
    return NULL;
  }
  if (status != 200) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot fetch %s: HTTP %ld", url, status);
    return NULL;
  }
  g_byte_array_append(buf, (const guint8 *)"", 1);
  return (char *)g_byte_array_free(g_steal_pointer(&buf), FALSE);
}
