/* SPDX-License-Identifier: MIT */
/* HTTP(S) download of an image archive into a partial file (libcurl): resume with Range
 * across runs, redirects, connect and low-speed timeouts, retries with backoff on transient
 * errors. One consumer thread reads the bytes while they arrive (lcvm_download_follow), so
 * extraction runs alongside the transfer; its reads feed the archive's sha256.
 * Never runs with privilege, never writes anywhere but the partial file and its .meta. */
#pragma once
#include <glib.h>

#include "lcvm-config.h"

#define LCVM_DOWNLOAD_ERROR (lcvm_download_error_quark())
GQuark lcvm_download_error_quark(void);

typedef enum {
  LCVM_DOWNLOAD_ERROR_INTERRUPTED, /* network trouble outlasted the retries: resumable */
  LCVM_DOWNLOAD_ERROR_HTTP,        /* the server refused (404, 403, …): not resumable */
  LCVM_DOWNLOAD_ERROR_LOCAL,       /* the partial file could not be written (disk full, …) */
  LCVM_DOWNLOAD_ERROR_ABORTED,     /* lcvm_download_abort() was called */
  LCVM_DOWNLOAD_ERROR_RESTARTED,   /* to the follower: the server sent the file from its start */
} LcvmDownloadError;

typedef struct {
  guint64 received;     /* bytes of the archive in the partial file */
  guint64 total;        /* archive size, 0 while unknown */
  guint64 resumed_from; /* bytes that were already there when this run started */
  double rate;          /* bytes/s, smoothed */
  gboolean done;
} LcvmDownloadProgress;

typedef void (*LcvmDownloadProgressFunc)(const LcvmDownloadProgress *progress, gpointer user_data);

typedef struct LcvmDownload LcvmDownload;

/* Opens (or creates) partial_name in dirfd. An existing partial file is kept for a resume
 * only when its .meta names the same URL; otherwise it starts empty. */
LcvmDownload *lcvm_download_new(int dirfd, const char *partial_name, const char *url,
                                const LcvmConfig *config, GError **error);
void lcvm_download_set_progress(LcvmDownload *dl, LcvmDownloadProgressFunc func,
                                gpointer user_data);
/* Bytes already in the partial file (what a resume starts from). */
guint64 lcvm_download_resume_offset(LcvmDownload *dl);

/* Fetches the rest of the archive. Blocks; on success the partial file holds it all. */
gboolean lcvm_download_run(LcvmDownload *dl, GError **error);

/* For one consumer thread: reads the archive from its start, waiting for bytes that have not
 * arrived yet. Returns 0 at the end of a successful download, -1 with an error when the
 * download failed or restarted. lcvm_download_rewind() starts the consumer over. */
gssize lcvm_download_follow(LcvmDownload *dl, void *buf, gsize len, GError **error);
void lcvm_download_rewind(LcvmDownload *dl);
/* For the consumer, after a successful run: reads what it has not read yet and returns the
 * lower-case hex sha256 of the whole archive (the consumer's reads feed the hash). */
char *lcvm_download_finish_sha256(LcvmDownload *dl, GError **error);
/* Stops a running download from another thread (the consumer gave up). */
void lcvm_download_abort(LcvmDownload *dl);

/* Deletes the partial file and its .meta (content known bad or unwanted). */
void lcvm_download_discard(LcvmDownload *dl);
void lcvm_download_free(LcvmDownload *dl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmDownload, lcvm_download_free)

/* Fetches a small text resource (at most max bytes), such as URL.sha256. A 404 or 410 is
 * G_IO_ERROR_NOT_FOUND. */
char *lcvm_download_text(const char *url, gsize max, const LcvmConfig *config, GError **error);
