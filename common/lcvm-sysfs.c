/* SPDX-License-Identifier: MIT */
/* sysfs access (see the header). Reads and writes use O_NOFOLLOW on the attribute itself;
 * the directories above it are the kernel's own symlinks (bus/pci/devices/X → ../../../devices/…)
 * and are followed. */
#include "lcvm-sysfs.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

/* First poll after 2 ms, doubling up to 50 ms: quick for the usual sub-10 ms effect,
 * cheap for a driver that takes seconds to let go of a GPU. */
#define WAIT_FIRST_US 2000
#define WAIT_MAX_US   50000

char *
lcvm_sysfs_read(const char *dir, const char *name, GError **error)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  lcvm_autofd int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    lcvm_set_errno(error, errno, "cannot open %s", path);
    return NULL;
  }
  char buf[LCVM_SYSFS_ATTR_MAX + 1];
  ssize_t n;
  do
    n = read(fd, buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    lcvm_set_errno(error, errno, "cannot read %s", path);
    return NULL;
  }
  if (n > LCVM_SYSFS_ATTR_MAX) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s is not a sysfs attribute (too long)",
                path);
    return NULL;
  }
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  return g_strdup(buf);
}

gboolean
lcvm_sysfs_read_uint(const char *dir, const char *name, guint64 *out, GError **error)
{
  g_autofree char *text = lcvm_sysfs_read(dir, name, error);
  if (text == NULL)
    return FALSE;
  char *end = NULL;
  errno = 0;
  guint64 v = g_ascii_strtoull(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0') {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s/%s holds '%s', not a number", dir,
                name, text);
    return FALSE;
  }
  *out = v;
  return TRUE;
}

gboolean
lcvm_sysfs_write(const char *dir, const char *name, const char *value, GError **error)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  int fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return lcvm_set_errno(error, errno, "cannot open %s", path);
  gsize len = strlen(value);
  ssize_t n;
  do
    n = write(fd, value, len);
  while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  if (close(fd) < 0 && err == 0)
    err = errno;
  if (err == 0 && (gsize)n != len)
    err = EIO;
  if (err != 0) {
    g_autofree char *shown = g_strescape(value, NULL);
    g_autofree char *what = g_strdup_printf("writing \"%s\" to", shown);
    return lcvm_set_errno(error, err, "%s %s", what, path);
  }
  return TRUE;
}

char *
lcvm_sysfs_link_name(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autofree char *target = g_file_read_link(path, NULL);
  if (target == NULL)
    return NULL;
  return g_path_get_basename(target);
}

static gint
compare_names(gconstpointer a, gconstpointer b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

GStrv
lcvm_sysfs_list(const char *dir)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
  const char *n;
  while (d != NULL && (n = g_dir_read_name(d)) != NULL)
    g_ptr_array_add(names, g_strdup(n));
  g_ptr_array_sort(names, compare_names);
  g_ptr_array_add(names, NULL);
  return (GStrv)g_ptr_array_free(g_steal_pointer(&names), FALSE);
}

gboolean
lcvm_sysfs_wait(LcvmSysfsCondition cond, gpointer data, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  gulong delay = WAIT_FIRST_US;
  for (;;) {
    if (cond(data))
      return TRUE;
    gint64 left = deadline - g_get_monotonic_time();
    if (left <= 0)
      return cond(data);
    g_usleep(MIN((gint64)delay, left));
    delay = MIN(delay * 2, WAIT_MAX_US);
  }
}
