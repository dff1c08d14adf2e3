/* SPDX-License-Identifier: MIT */
/* The download transaction (see the header). Work files live beside the images, hidden:
 * .NAME.lock (flock), .NAME.tar.partial (+ .meta), .NAME.extract-XXXXXX/ (the new tree).
 * The archive is extracted by a second thread that reads the partial file as it grows. */
#include "lcvm-image-install.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "lcvm-extract.h"
#include "lcvm-layout.h"
#include "lcvm-safe-io.h"
#include "lcvm-sha256.h"
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_DSTACK_URL "https://github.com/Dstack-TEE/meta-dstack/releases/download/v%s/%s.tar.gz"
#define DSTACK_GUEST_OS_URL                                                                        \
  "https://github.com/Dstack-TEE/dstack/releases/download/guest-os-v%s/%s.tar.gz"
#define SHA256_FILE_MAX 4096

typedef struct {
  const LcvmConfig *config;
  const LcvmImageInstallOptions *opts;
  char *store;
  int storefd;
  int lockfd;
  char *tmp_name; /* .NAME.extract-XXXXXX, NULL when none */
  int tmpfd;
} Install;

static void notice(const Install *in, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
notice(const Install *in, const char *fmt, ...)
{
  if (in->opts->notice == NULL)
    return;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  in->opts->notice(msg, in->opts->user_data);
}

char *
lcvm_image_default_url(const LcvmConfig *config, const char *name)
{
  if (config->image_url[0] != '\0') {
    g_auto(GStrv) parts = g_strsplit(config->image_url, "%s", -1);
    return g_strjoinv(name, parts);
  }
  const char *dash = strrchr(name, '-');
  unsigned major = 0, minor = 0, patch = 0;
  char end = 0;
  if (dash == NULL || sscanf(dash + 1, "%u.%u.%u%c", &major, &minor, &patch, &end) != 3)
    return NULL;
  if (major > 0 || minor >= 6)
    return g_strdup_printf(DSTACK_GUEST_OS_URL, dash + 1, name);
  return g_strdup_printf(META_DSTACK_URL, dash + 1, name);
}

static gboolean
errno_fail(GError **error, int err, const char *what, const char *path)
{
  lcvm_set_errno(error, err, "%s %s", what, path);
  if (error != NULL && (err == EACCES || err == EPERM)) {
    g_autofree char *plain = (*error)->message;
    (*error)->message =
        g_strconcat(plain,
                    " (operators need to be in group lium-cvm; the store is created "
                    "by systemd-tmpfiles from lium-cvm's tmpfiles.d)",
                    NULL);
  }
  return FALSE;
}

static gboolean
open_store(Install *in, GError **error)
{
  in->store = lcvm_layout_images_dir(in->config);
  if (mkdir(in->store, 02775) == 0)
    chmod(in->store, 02775);
  else if (errno != EEXIST)
    return errno_fail(error, errno, "cannot create the image store", in->store);
  in->storefd = lcvm_open_dir_at(AT_FDCWD, in->store, error);
  return in->storefd >= 0;
}

static gboolean
take_lock(Install *in, GError **error)
{
  g_autofree char *name = lcvm_layout_image_lock(in->opts->name);
  in->lockfd = openat(in->storefd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0664);
  if (in->lockfd < 0)
    return errno_fail(error, errno, "cannot create the lock file in", in->store);
  if (flock(in->lockfd, LOCK_EX | LOCK_NB) == 0)
    return TRUE;
  if (errno != EWOULDBLOCK)
    return errno_fail(error, errno, "cannot lock", name);
  notice(in, "another lium-cvm download of %s is running; waiting for it to finish",
         in->opts->name);
  while (flock(in->lockfd, LOCK_EX) < 0)
    if (errno != EINTR)
      return errno_fail(error, errno, "cannot lock", name);
  return TRUE;
}

/* Leftovers of an earlier run that died: never images, always safe to delete under the lock. */
static void
remove_leftovers(Install *in)
{
  g_autofree char *extract = g_strdup_printf(".%s.extract-", in->opts->name);
  g_autofree char *removing = g_strdup_printf(".%s.removing-", in->opts->name);
  g_autoptr(GDir) dir = g_dir_open(in->store, 0, NULL);
  for (const char *n = dir ? g_dir_read_name(dir) : NULL; n != NULL; n = g_dir_read_name(dir))
    if (g_str_has_prefix(n, extract) || g_str_has_prefix(n, removing))
      lcvm_remove_tree_at(in->storefd, n, NULL);
}

static LcvmImage *
present_and_verified(Install *in)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(LcvmImage) image = lcvm_image_load(in->config, in->opts->name, &local);
  if (image == NULL) {
    if (!g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
      notice(in, "%s; downloading it again", local->message);
    return NULL;
  }
  if (lcvm_image_state(image) != LCVM_IMAGE_VERIFIED && !lcvm_image_verify(image, &local)) {
    notice(in, "%s; downloading it again", local->message);
    return NULL;
  }
  lcvm_image_mark_verified(image, NULL);
  return g_steal_pointer(&image);
}

static gboolean
make_tmp(Install *in, GError **error)
{
  g_autofree char *tmpl = g_strdup_printf("%s/.%s.extract-XXXXXX", in->store, in->opts->name);
  if (g_mkdtemp_full(tmpl, 0700) == NULL)
    return errno_fail(error, errno, "cannot create a temporary directory in", in->store);
  in->tmp_name = g_path_get_basename(tmpl);
  in->tmpfd = lcvm_open_dir_at(in->storefd, in->tmp_name, error);
  return in->tmpfd >= 0;
}

static void
drop_tmp(Install *in)
{
  lcvm_close_fdp(&in->tmpfd);
  if (in->tmp_name != NULL)
    lcvm_remove_tree_at(in->storefd, in->tmp_name, NULL);
  g_clear_pointer(&in->tmp_name, g_free);
}

/* ---- download + extraction ---- */

typedef struct {
  LcvmDownload *dl;
  int dirfd;
  char *top;
  GError *error;
} ExtractJob;

static gssize
follow_read(gpointer data, void *buf, gsize len, GError **error)
{
  return lcvm_download_follow(data, buf, len, error);
}

static gpointer
extract_thread(gpointer data)
{
  ExtractJob *job = data;
  if (!lcvm_extract_image(job->dirfd, follow_read, job->dl, &job->top, &job->error) &&
      !g_error_matches(job->error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_RESTARTED))
    lcvm_download_abort(job->dl);
  return NULL;
}

static char *
expected_sha256(Install *in, GError **error)
{
  if (in->opts->sha256 != NULL)
    return g_ascii_strdown(in->opts->sha256, -1);
  if (!in->opts->fetch_sha256)
    return NULL;
  g_autofree char *url = g_strdup_printf("%s.sha256", in->opts->url);
  g_autoptr(GError) local = NULL;
  g_autofree char *text = lcvm_download_text(url, SHA256_FILE_MAX, in->config, &local);
  if (text == NULL) {
    if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
      return NULL;
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
  }
  g_auto(GStrv) words = g_strsplit_set(g_strstrip(text), " \t\n", 2);
  if (!lcvm_sha256_is_hex(words[0])) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "%s does not start with a sha256; pass --sha256 HEX", url);
    return NULL;
  }
  notice(in, "archive sha256 from %s: %s", url, words[0]);
  return g_ascii_strdown(words[0], -1);
}

/* Runs the transfer and the extraction together. On failure decides the partial file's fate:
 * kept only when the network interrupted the transfer. */
static gboolean
fetch_and_extract(Install *in, LcvmDownload *dl, char **top, GError **error)
{
  ExtractJob job = { .dl = dl, .dirfd = in->tmpfd };
  GThread *thread = g_thread_new("extract", extract_thread, &job);
  g_autoptr(GError) dl_error = NULL;
  gboolean dl_ok = lcvm_download_run(dl, &dl_error);
  g_thread_join(thread);
  g_autoptr(GError) ex_error = job.error;
  g_autofree char *ex_top = job.top;
  if (!dl_ok && g_error_matches(dl_error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_INTERRUPTED)) {
    g_set_error(error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_INTERRUPTED,
                "%s; the partial download is kept: run the same command again to resume",
                dl_error->message);
    return FALSE;
  }
  if (!dl_ok) {
    lcvm_download_discard(dl);
    gboolean by_extractor = ex_error != NULL && g_error_matches(dl_error, LCVM_DOWNLOAD_ERROR,
                                                                LCVM_DOWNLOAD_ERROR_ABORTED);
    g_propagate_error(error,
                      by_extractor ? g_steal_pointer(&ex_error) : g_steal_pointer(&dl_error));
    return FALSE;
  }
  if (g_error_matches(ex_error, LCVM_DOWNLOAD_ERROR, LCVM_DOWNLOAD_ERROR_RESTARTED)) {
    /* The server ignored the resume: extract the complete file again from its start. */
    g_clear_error(&ex_error);
    drop_tmp(in);
    if (!make_tmp(in, error))
      return FALSE;
    lcvm_download_rewind(dl);
    lcvm_extract_image(in->tmpfd, follow_read, dl, &ex_top, &ex_error);
  }
  if (ex_error != NULL) {
    lcvm_download_discard(dl);
    g_propagate_error(error, g_steal_pointer(&ex_error));
    return FALSE;
  }
  *top = g_steal_pointer(&ex_top);
  return TRUE;
}

/* The known-good list's verdict on the extracted image, before it reaches the store. */
static gboolean
check_accepted(Install *in, const LcvmImage *image, GError **error)
{
  const char *const *accepted = in->opts->accepted_digests;
  if (accepted == NULL || (image->digest && g_strv_contains(accepted, image->digest)))
    return TRUE;
  g_autofree char *list = g_strjoinv(", ", (char **)accepted);
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
              "the image from %s has digest %s, but the known-good list accepts only %s: "
              "validators will reject it, so the download was deleted (check the URL; update "
              "the known-good list when validators accept a new image)",
              in->opts->url, image->digest ? image->digest : "(none)", list);
  return FALSE;
}

static gboolean
check_archive(Install *in, LcvmDownload *dl, const char *want_sha256, const char *top,
              GError **error)
{
  g_autofree char *got = lcvm_download_finish_sha256(dl, error);
  if (got == NULL)
    return FALSE;
  if (want_sha256 != NULL && !g_str_equal(got, want_sha256)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "the archive from %s has sha256 %s, expected %s; the download was deleted "
                "(check --sha256 and the URL)",
                in->opts->url, got, want_sha256);
    return FALSE;
  }
  if (!g_str_equal(top, in->opts->name)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "the archive from %s holds image %s, not %s; run 'lium-cvm download %s --url "
                "%s' if that is the image you want",
                in->opts->url, top, in->opts->name, top, in->opts->url);
    return FALSE;
  }
  g_autofree char *dir = g_build_filename(in->store, in->tmp_name, top, NULL);
  g_autoptr(LcvmImage) image = lcvm_image_load_dir(dir, top, error);
  return image != NULL && lcvm_image_verify(image, error) && check_accepted(in, image, error);
}

/* Moves tmp/NAME to NAME (the extractor synced the files and directories); an existing
 * (broken) NAME is swapped out, into tmp, and deleted with it. */
static gboolean
move_into_place(Install *in, GError **error)
{
  const char *name = in->opts->name;
  if (renameat2(in->tmpfd, name, in->storefd, name, RENAME_NOREPLACE) == 0)
    return fsync(in->storefd) == 0 ? TRUE : errno_fail(error, errno, "cannot flush", in->store);
  if (errno != EEXIST)
    return errno_fail(error, errno, "cannot move the new image into", in->store);
  if (renameat2(in->tmpfd, name, in->storefd, name, RENAME_EXCHANGE) < 0)
    return errno_fail(error, errno, "cannot replace the old image in", in->store);
  return fsync(in->storefd) == 0 ? TRUE : errno_fail(error, errno, "cannot flush", in->store);
}

static LcvmImage *
download_image(Install *in, GError **error)
{
  g_autofree char *want_sha256 = expected_sha256(in, error);
  if (want_sha256 == NULL && error != NULL && *error != NULL)
    return NULL;
  g_autofree char *partial = g_strdup_printf(".%s.tar.partial", in->opts->name);
  g_autoptr(LcvmDownload) dl =
      lcvm_download_new(in->storefd, partial, in->opts->url, in->config, error);
  if (dl == NULL)
    return NULL;
  lcvm_download_set_progress(dl, in->opts->progress, in->opts->user_data);
  if (lcvm_download_resume_offset(dl) > 0)
    notice(in, "resuming the download of %s at byte %" G_GUINT64_FORMAT, in->opts->name,
           lcvm_download_resume_offset(dl));
  g_autofree char *top = NULL;
  if (!make_tmp(in, error) || !fetch_and_extract(in, dl, &top, error))
    return NULL;
  if (!check_archive(in, dl, want_sha256, top, error)) {
    lcvm_download_discard(dl);
    return NULL;
  }
  if (!move_into_place(in, error))
    return NULL;
  lcvm_download_discard(dl);
  g_autofree char *stamp = lcvm_layout_image_stamp(in->opts->name);
  lcvm_remove_tree_at(in->storefd, stamp, NULL);
  g_autoptr(LcvmImage) image = lcvm_image_load(in->config, in->opts->name, error);
  if (image != NULL)
    lcvm_image_mark_verified(image, NULL);
  return g_steal_pointer(&image);
}

LcvmImage *
lcvm_image_install(const LcvmConfig *config, const LcvmImageInstallOptions *options,
                   gboolean *downloaded, GError **error)
{
  if (!lcvm_image_name_is_valid(options->name)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "'%s' is not an image name (up to 64 letters, digits, '_', '-', '.')",
                options->name);
    return NULL;
  }
  Install in = { .config = config, .opts = options, .storefd = -1, .lockfd = -1, .tmpfd = -1 };
  LcvmImage *image = NULL;
  *downloaded = FALSE;
  if (open_store(&in, error) && take_lock(&in, error)) {
    remove_leftovers(&in);
    image = present_and_verified(&in);
    if (image == NULL) {
      image = download_image(&in, error);
      *downloaded = image != NULL;
    }
  }
  drop_tmp(&in);
  lcvm_close_fdp(&in.lockfd);
  lcvm_close_fdp(&in.storefd);
  g_free(in.store);
  return image;
}
