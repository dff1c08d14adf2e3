/* SPDX-License-Identifier: MIT */
/* Safe file primitives (see the header). Errors name the path and the errno text. */
#include "lcvm-safe-io.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int
lcvm_open_dir_at(int dirfd, const char *path, GError **error)
{
  int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    lcvm_set_errno(error, errno, "cannot open directory %s", path);
  return fd;
}

static gboolean
write_all(int fd, const char *data, gsize len)
{
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return FALSE;
    data += n;
    len -= (gsize)n;
  }
  return TRUE;
}

gboolean
lcvm_write_file_atomic_at(int dirfd, const char *name, const void *data, gsize len, mode_t mode,
                          GError **error)
{
  g_autofree char *tmp = NULL;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
    g_free(tmp);
    tmp = g_strdup_printf(".%s.%08x.tmp", name, g_random_int());
    fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 && errno != EEXIST)
      return lcvm_set_errno(error, errno, "cannot create %s", tmp);
  }
  if (fd < 0)
    return lcvm_set_errno(error, EEXIST, "cannot create a temporary file for %s", name);
  int err = 0;
  if (!write_all(fd, data, len) || fchmod(fd, mode) < 0 || fsync(fd) < 0)
    err = errno ? errno : EIO;
  if (close(fd) < 0 && err == 0)
    err = errno;
  if (err == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
    err = errno;
  if (err != 0) {
    unlinkat(dirfd, tmp, 0);
    return lcvm_set_errno(error, err, "cannot write %s", name);
  }
  return TRUE;
}

gboolean
lcvm_write_file_atomic(const char *dir, const char *name, const void *data, gsize len, mode_t mode,
                       GError **error)
{
  lcvm_autofd int dirfd = lcvm_open_dir_at(AT_FDCWD, dir, error);
  if (dirfd < 0)
    return FALSE;
  gboolean ok = lcvm_write_file_atomic_at(dirfd, name, data, len, mode, error);
  return ok;
}

/* What an opened file must be before it is read; its size, or FALSE with error set. */
static gboolean
check_readable(int fd, const char *name, gsize max, gboolean single_link, gsize *size,
               GError **error)
{
  struct stat st;
  if (fstat(fd, &st) < 0)
    return lcvm_set_errno(error, errno, "cannot stat %s", name);
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE, "%s is not a regular file", name);
    return FALSE;
  }
  if ((gsize)st.st_size > max) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s is larger than %" G_GSIZE_FORMAT " bytes",
                name, max);
    return FALSE;
  }
  if (single_link && st.st_nlink != 1) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                "%s is a hard link (%" G_GUINT64_FORMAT " names): copy the file instead", name,
                (guint64)st.st_nlink);
    return FALSE;
  }
  *size = (gsize)st.st_size;
  return TRUE;
}

static gboolean
read_file_at(int dirfd, const char *name, gsize max, gboolean single_link, char **contents,
             gsize *len, GError **error)
{
  /* O_NONBLOCK: a FIFO planted under the name must not block the reader in open(). */
  lcvm_autofd int fd =
      openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0)
    return lcvm_set_errno(error, errno, "cannot open %s", name);
  gsize size = 0;
  if (!check_readable(fd, name, max, single_link, &size, error))
    return FALSE;
  g_autoptr(GString) buf = g_string_sized_new(size + 1);
  char chunk[8192];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return lcvm_set_errno(error, errno, "cannot read %s", name);
    if (n == 0)
      break;
    if (buf->len + (gsize)n > max) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s grew beyond %" G_GSIZE_FORMAT " bytes",
                  name, max);
      return FALSE;
    }
    g_string_append_len(buf, chunk, n);
  }
  if (len != NULL)
    *len = buf->len;
  *contents = g_string_free(g_steal_pointer(&buf), FALSE);
  return TRUE;
}

gboolean
lcvm_read_file_at(int dirfd, const char *name, gsize max, char **contents, gsize *len,
                  GError **error)
{
  return read_file_at(dirfd, name, max, FALSE, contents, len, error);
}

gboolean
lcvm_read_untrusted_file_at(int dirfd, const char *name, gsize max, char **contents, gsize *len,
                            GError **error)
{
  return read_file_at(dirfd, name, max, TRUE, contents, len, error);
}

int
lcvm_open_beneath(int dirfd, const char *path, int flags, GError **error)
{
  struct open_how how = {
    .flags = (guint64)(flags | O_CLOEXEC | O_NOFOLLOW),
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  int fd;
  do
    fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    lcvm_set_errno(error, errno, "cannot open %s", path);
  return fd;
}

static gboolean
remove_children(int dirfd, const char *name, GError **error)
{
  lcvm_autofd int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return lcvm_set_errno(error, errno, "cannot open directory %s", name);
  DIR *dir = fdopendir(fd);
  if (dir == NULL)
    return lcvm_set_errno(error, errno, "cannot list %s", name);
  int dir_fd = lcvm_steal_fd(&fd); /* closedir closes it */
  gboolean ok = TRUE;
  for (struct dirent *d = readdir(dir); d != NULL && ok; d = readdir(dir)) {
    if (g_str_equal(d->d_name, ".") || g_str_equal(d->d_name, ".."))
      continue;
    ok = lcvm_remove_tree_at(dir_fd, d->d_name, error);
  }
  closedir(dir);
  return ok;
}

gboolean
lcvm_remove_tree_at(int dirfd, const char *name, GError **error)
{
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? TRUE : lcvm_set_errno(error, errno, "cannot stat %s", name);
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
      return lcvm_set_errno(error, errno, "cannot remove %s", name);
    return TRUE;
  }
  if (!remove_children(dirfd, name, error))
    return FALSE;
  if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return lcvm_set_errno(error, errno, "cannot remove directory %s", name);
  return TRUE;
}
