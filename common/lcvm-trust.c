/* SPDX-License-Identifier: MIT */
/* The root-owned-path rule (see the header). The path is resolved first, then every component
 * of the resolved path is checked with lstat, from / down: what is checked is what the caller
 * then opens or executes. */
#include "lcvm-trust.h"
#include "lcvm-error.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static gboolean
check_one(const char *path, const char *component, GError **error)
{
  struct stat st;
  if (lstat(component, &st) < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "refusing to trust %s: %s: %s", path,
                component, g_strerror(errno));
    return FALSE;
  }
  if (st.st_uid != 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "refusing to trust %s: %s is owned by uid %u, not root; keep it in a directory "
                "tree that only root owns and can write",
                path, component, (guint)st.st_uid);
    return FALSE;
  }
  gboolean sticky_dir = (st.st_mode & (S_IFMT | S_ISVTX)) == (S_IFDIR | S_ISVTX);
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky_dir) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "refusing to trust %s: %s is writable by others than root (mode %04o); run "
                "'chmod go-w %s'",
                path, component, (guint)(st.st_mode & 07777), component);
    return FALSE;
  }
  return TRUE;
}

char *
lcvm_trusted_path(const char *path, GError **error)
{
  g_autofree char *real = realpath(path, NULL);
  if (real == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND, "%s: %s; check the configured path", path,
                g_strerror(errno));
    return NULL;
  }
  if (!check_one(path, "/", error))
    return NULL;
  for (char *slash = strchr(real + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
    *slash = '\0';
    gboolean ok = check_one(path, real, error);
    *slash = '/';
    if (!ok)
      return NULL;
  }
  if (!check_one(path, real, error))
    return NULL;
  return g_steal_pointer(&real);
}
