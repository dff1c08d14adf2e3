/* SPDX-License-Identifier: MIT */
/* Image archive extraction (see the header). Each entry's path is split and checked before
 * anything is created; parents are walked one component at a time with O_NOFOLLOW, so even a
 * symlink the archive planted earlier cannot redirect a later entry. */
#include "lcvm-extract.h"
#include "lcvm-fd.h"
#include "lcvm-image.h"
#include "lcvm-safe-io.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_BUFFER_SIZE (1024 * 1024)
#define OPERATOR_GROUP   "lium-cvm"
#define DIR_MODE         02775
#define FILE_MODE        0644
#define WRITEBACK_CHUNK  (8 << 20)

G_DEFINE_QUARK(lcvm - extract - error - quark, lcvm_extract_error)

typedef struct {
  int rootfd;
  char *top;
  gid_t gid; /* (gid_t)-1: leave the group as created */
  LcvmExtractReadFunc read_func;
  gpointer read_data;
  GError *source_error;
  void *buf;
  GHashTable *files; /* archive paths of the regular files written: hardlink targets */
  GHashTable *dirs;  /* archive paths of the directories: synced at the end */
} Extractor;

static gboolean
refuse(GError **error, LcvmExtractError code, const char *path, const char *why)
{
  g_set_error(error, LCVM_EXTRACT_ERROR, code,
              "refusing the archive: entry '%s' %s; this is not a dstack image archive, check "
              "the URL",
              path, why);
  return FALSE;
}

static gboolean
write_failed(GError **error, int err, const char *path)
{
  g_set_error(error, LCVM_EXTRACT_ERROR, LCVM_EXTRACT_ERROR_WRITE, "cannot extract %s: %s%s", path,
              g_strerror(err),
              err == ENOSPC ? " (free some space in the image store and try again)" : "");
  return FALSE;
}

/* Splits an archive path into its components without "" and "."; refuses absolute paths and "..".
 */
static GPtrArray *
split_path(const char *path, GError **error)
{
  if (path == NULL || path[0] == '\0') {
    refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, "", "has no name");
    return NULL;
  }
  if (path[0] == '/') {
    refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path, "is an absolute path");
    return NULL;
  }
  g_autoptr(GPtrArray) comps = g_ptr_array_new_with_free_func(g_free);
  g_auto(GStrv) parts = g_strsplit(path, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++) {
    if (parts[i][0] == '\0' || g_str_equal(parts[i], "."))
      continue;
    if (g_str_equal(parts[i], "..")) {
      refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path, "contains '..'");
      return NULL;
    }
    g_ptr_array_add(comps, g_strdup(parts[i]));
  }
  return g_steal_pointer(&comps);
}

/* The first n components joined with '/'. */
static char *
join_path(GPtrArray *comps, guint n)
{
  GString *path = g_string_new(NULL);
  for (guint i = 0; i < n; i++) {
    if (i > 0)
      g_string_append_c(path, '/');
    g_string_append(path, comps->pdata[i]);
  }
  return g_string_free(path, FALSE);
}

static gboolean
check_layout(Extractor *ex, GPtrArray *comps, const char *path, gboolean is_dir, GError **error)
{
  const char *first = comps->pdata[0];
  if (!g_str_has_prefix(first, "dstack-") || !lcvm_image_name_is_valid(first))
    return refuse(error, LCVM_EXTRACT_ERROR_LAYOUT, path,
                  "is outside a top-level dstack-* directory");
  if (ex->top != NULL && !g_str_equal(ex->top, first))
    return refuse(error, LCVM_EXTRACT_ERROR_LAYOUT, path,
                  "is in a second top-level directory (an image archive has exactly one)");
  if (comps->len == 1 && !is_dir)
    return refuse(error, LCVM_EXTRACT_ERROR_LAYOUT, path, "is not a directory at the top level");
  if (ex->top == NULL)
    ex->top = g_strdup(first);
  return TRUE;
}

static gboolean
fix_owner_mode(Extractor *ex, int fd, mode_t mode, const char *path, GError **error)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return write_failed(error, errno, path);
  if (ex->gid != (gid_t)-1 && st.st_gid != ex->gid && fchown(fd, (uid_t)-1, ex->gid) < 0)
    return write_failed(error, errno, path);
  if (fchmod(fd, mode) < 0)
    return write_failed(error, errno, path);
  return TRUE;
}

/* Opens (creating as needed) the directory made of the first n components. */
static int
open_dir(Extractor *ex, GPtrArray *comps, guint n, const char *path, GError **error)
{
  lcvm_autofd int fd = dup(ex->rootfd);
  for (guint i = 0; i < n && fd >= 0; i++) {
    const char *c = comps->pdata[i];
    if (mkdirat(fd, c, 0775) < 0 && errno != EEXIST) {
      write_failed(error, errno, path);
      return -1;
    }
    lcvm_autofd int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      if (errno == ELOOP || errno == ENOTDIR)
        refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path, "passes through a symlink or a file");
      else
        write_failed(error, errno, path);
      return -1;
    }
    if (!fix_owner_mode(ex, next, DIR_MODE, path, error))
      return -1;
    g_hash_table_add(ex->dirs, join_path(comps, i + 1));
    lcvm_close_fdp(&fd);
    fd = lcvm_steal_fd(&next);
  }
  if (fd < 0)
    write_failed(error, errno, path);
  return lcvm_steal_fd(&fd);
}

/* Starts writeback of what was written since *flushed, so the final fdatasync finds little
 * left to do and the disk works while the download goes on. */
static void
start_writeback(int fd, off_t end, off_t *flushed)
{
  if (end - *flushed < WRITEBACK_CHUNK)
    return;
  sync_file_range(fd, *flushed, end - *flushed, SYNC_FILE_RANGE_WRITE);
  *flushed = end;
}

static gboolean
write_data(Extractor *ex, struct archive *a, int fd, const char *path, GError **error)
{
  const void *block;
  size_t size;
  la_int64_t offset;
  off_t flushed = 0;
  for (;;) {
    int r = archive_read_data_block(a, &block, &size, &offset);
    if (r == ARCHIVE_EOF)
      return fdatasync(fd) == 0 ? TRUE : write_failed(error, errno, path);
    if (r < ARCHIVE_WARN) {
      if (ex->source_error != NULL) {
        g_propagate_error(error, g_steal_pointer(&ex->source_error));
        return FALSE;
      }
      g_set_error(error, LCVM_EXTRACT_ERROR, LCVM_EXTRACT_ERROR_FORMAT,
                  "the archive is damaged at %s: %s", path, archive_error_string(a));
      return FALSE;
    }
    const char *p = block;
    while (size > 0) {
      ssize_t n = pwrite(fd, p, size, (off_t)offset);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return write_failed(error, n < 0 ? errno : EIO, path);
      p += n;
      size -= (size_t)n;
      offset += n;
    }
    start_writeback(fd, (off_t)offset, &flushed);
  }
}

static gboolean
extract_file(Extractor *ex, struct archive *a, struct archive_entry *entry, GPtrArray *comps,
             const char *path, GError **error)
{
  lcvm_autofd int dirfd = open_dir(ex, comps, comps->len - 1, path, error);
  if (dirfd < 0)
    return FALSE;
  const char *leaf = comps->pdata[comps->len - 1];
  /* Closed by hand: a failing close() is a failed write. */
  int fd = openat(dirfd, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, FILE_MODE);
  if (fd < 0)
    return errno == EEXIST ? refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path, "appears twice")
                           : write_failed(error, errno, path);
  gboolean ok = write_data(ex, a, fd, path, error);
  if (ok && archive_entry_size_is_set(entry) && ftruncate(fd, (off_t)archive_entry_size(entry)) < 0)
    ok = write_failed(error, errno, path);
  ok = ok && fix_owner_mode(ex, fd, FILE_MODE, path, error);
  if (close(fd) < 0 && ok)
    ok = write_failed(error, errno, path);
  if (ok)
    g_hash_table_add(ex->files, join_path(comps, comps->len));
  return ok;
}

static gboolean
extract_dir(Extractor *ex, GPtrArray *comps, const char *path, GError **error)
{
  lcvm_autofd int fd = open_dir(ex, comps, comps->len, path, error);
  return fd >= 0;
}

/* A symlink target must be relative and never go up ('..'). A lexical check of '..' is not
 * enough: a target that passes through another link the archive plants (before or after it,
 * say "sub/up -> ..") really climbs where the text does not. Without '..', every link points
 * below its own directory, and so does any chain of them. dstack's images are a flat directory
 * of plain files (reference/dstack.md §2.1): no image needs a link that goes up. */
static gboolean
symlink_stays_inside(const char *target)
{
  if (target == NULL || target[0] == '\0' || target[0] == '/')
    return FALSE;
  g_auto(GStrv) parts = g_strsplit(target, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    if (g_str_equal(parts[i], ".."))
      return FALSE;
  return TRUE;
}

static gboolean
extract_symlink(Extractor *ex, struct archive_entry *entry, GPtrArray *comps, const char *path,
                GError **error)
{
  const char *target = archive_entry_symlink(entry);
  if (!symlink_stays_inside(target))
    return refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path,
                  "is a symlink pointing outside the image directory or up ('..')");
  lcvm_autofd int dirfd = open_dir(ex, comps, comps->len - 1, path, error);
  if (dirfd < 0)
    return FALSE;
  if (symlinkat(target, dirfd, comps->pdata[comps->len - 1]) < 0)
    return errno == EEXIST ? refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path, "appears twice")
                           : write_failed(error, errno, path);
  return TRUE;
}

static gboolean
extract_hardlink(Extractor *ex, GPtrArray *comps, const char *path, const char *target,
                 GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(GPtrArray) tcomps = split_path(target, &local);
  g_autofree char *tpath = tcomps && tcomps->len > 0 ? join_path(tcomps, tcomps->len) : NULL;
  if (tpath == NULL || !g_str_equal(tcomps->pdata[0], ex->top) ||
      !g_hash_table_contains(ex->files, tpath))
    return refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path,
                  "is a hardlink to something other than a file extracted before it");
  lcvm_autofd int dirfd = open_dir(ex, comps, comps->len - 1, path, error);
  if (dirfd < 0)
    return FALSE;
  if (linkat(ex->rootfd, tpath, dirfd, comps->pdata[comps->len - 1], 0) < 0)
    return errno == EEXIST ? refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path, "appears twice")
                           : write_failed(error, errno, path);
  return TRUE;
}

static const char *
type_name(mode_t type)
{
  switch (type) {
  case AE_IFCHR:
    return "is a character device";
  case AE_IFBLK:
    return "is a block device";
  case AE_IFIFO:
    return "is a FIFO";
  case AE_IFSOCK:
    return "is a socket";
  default:
    return "has an unknown file type";
  }
}

static gboolean
extract_entry(Extractor *ex, struct archive *a, struct archive_entry *entry, GError **error)
{
  const char *path = archive_entry_pathname(entry);
  mode_t type = archive_entry_filetype(entry);
  const char *hardlink = archive_entry_hardlink(entry);
  g_autoptr(GPtrArray) comps = split_path(path, error);
  if (comps == NULL)
    return FALSE;
  if (comps->len == 0 && type == AE_IFDIR)
    return TRUE; /* "./" */
  if (comps->len == 0)
    return refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path, "has no name");
  if (!check_layout(ex, comps, path, type == AE_IFDIR && hardlink == NULL, error))
    return FALSE;
  if (hardlink != NULL)
    return extract_hardlink(ex, comps, path, hardlink, error);
  switch (type) {
  case AE_IFREG:
    return extract_file(ex, a, entry, comps, path, error);
  case AE_IFDIR:
    return extract_dir(ex, comps, path, error);
  case AE_IFLNK:
    return extract_symlink(ex, entry, comps, path, error);
  default:
    return refuse(error, LCVM_EXTRACT_ERROR_UNSAFE, path, type_name(type));
  }
}

static la_ssize_t
read_cb(struct archive *a, void *data, const void **buffer)
{
  Extractor *ex = data;
  gssize n = ex->read_func(ex->read_data, ex->buf, READ_BUFFER_SIZE, &ex->source_error);
  if (n < 0) {
    archive_set_error(a, EIO, "%s", ex->source_error ? ex->source_error->message : "read failed");
    return -1;
  }
  *buffer = ex->buf;
  return n;
}

static gboolean
archive_failed(Extractor *ex, struct archive *a, GError **error)
{
  if (ex->source_error != NULL) {
    g_propagate_error(error, g_steal_pointer(&ex->source_error));
    return FALSE;
  }
  g_set_error(error, LCVM_EXTRACT_ERROR, LCVM_EXTRACT_ERROR_FORMAT,
              "the download is not a readable image archive (%s): check the URL",
              archive_error_string(a));
  return FALSE;
}

/* File data is synced as each file ends; the directory entries are synced here. */
static gboolean
sync_dirs(Extractor *ex, GError **error)
{
  GHashTableIter iter;
  gpointer path;
  g_hash_table_iter_init(&iter, ex->dirs);
  while (g_hash_table_iter_next(&iter, &path, NULL)) {
    lcvm_autofd int fd = lcvm_open_beneath(ex->rootfd, path, O_RDONLY | O_DIRECTORY, NULL);
    if (fd < 0 || fsync(fd) < 0)
      return write_failed(error, errno, path);
  }
  return fsync(ex->rootfd) == 0 ? TRUE : write_failed(error, errno, ".");
}

static gboolean
extract_all(Extractor *ex, struct archive *a, GError **error)
{
  if (archive_read_open(a, ex, NULL, read_cb, NULL) != ARCHIVE_OK)
    return archive_failed(ex, a, error);
  struct archive_entry *entry;
  for (;;) {
    int r = archive_read_next_header(a, &entry);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return archive_failed(ex, a, error);
    if (!extract_entry(ex, a, entry, error))
      return FALSE;
  }
  if (ex->top == NULL) {
    g_set_error(error, LCVM_EXTRACT_ERROR, LCVM_EXTRACT_ERROR_LAYOUT,
                "the archive is empty: this is not a dstack image archive, check the URL");
    return FALSE;
  }
  return sync_dirs(ex, error);
}

gboolean
lcvm_extract_image(int dirfd, LcvmExtractReadFunc read_func, gpointer user_data, char **top,
                   GError **error)
{
  struct group *gr = getgrnam(OPERATOR_GROUP);
  Extractor ex = {
    .rootfd = dirfd,
    .gid = gr ? gr->gr_gid : (gid_t)-1,
    .read_func = read_func,
    .read_data = user_data,
    .buf = g_malloc(READ_BUFFER_SIZE),
    .files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
    .dirs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL),
  };
  struct archive *a = archive_read_new();
  /* In-process decompressors only: filter_all would also spawn external programs. */
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_xz(a);
  archive_read_support_filter_zstd(a);
  archive_read_support_filter_bzip2(a);
  archive_read_support_format_tar(a);
  gboolean ok = extract_all(&ex, a, error);
  archive_read_free(a);
  if (ok)
    *top = g_steal_pointer(&ex.top);
  g_free(ex.top);
  g_free(ex.buf);
  g_clear_error(&ex.source_error);
  g_hash_table_unref(ex.files);
  g_hash_table_unref(ex.dirs);
  return ok;
}
