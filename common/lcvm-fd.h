/* SPDX-License-Identifier: MIT */
/* File descriptors closed when they leave scope, as g_autoptr frees memory:
 *
 *   lcvm_autofd int fd = openat(...);
 *   if (fd < 0) return lcvm_set_errno(error, errno, "cannot open %s", path);
 *   ...
 *   return lcvm_steal_fd(&fd);   // hand it on; the cleanup then closes nothing
 *
 * A negative value is "no descriptor". Closing keeps errno, so an error path may still read it.
 * A descriptor kept in a struct is closed the same way: lcvm_close_fdp(&s->fd). */
#pragma once
#include <errno.h>
#include <unistd.h>

static inline void
lcvm_close_fdp(int *fd)
{
  if (*fd >= 0) {
    int saved = errno;
    close(*fd);
    errno = saved;
    *fd = -1;
  }
}

#define lcvm_autofd __attribute__((cleanup(lcvm_close_fdp)))

static inline int
lcvm_steal_fd(int *fd)
{
  int value = *fd;
  *fd = -1;
  return value;
}
