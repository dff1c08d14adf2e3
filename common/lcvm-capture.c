/* SPDX-License-Identifier: MIT */
/* Capturing a program's output with a deadline (see the header). */
#include "lcvm-capture.h"

#include <errno.h>
#include <gio/gio.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

char *
lcvm_capture(const char *const *argv, guint timeout_ms, gsize max, int *status, GError **error)
{
  const char *envp[] = { "PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C", NULL };
  GPid pid;
  int out = -1;
  if (!g_spawn_async_with_pipes(NULL, (char **)argv, (char **)envp,
                                G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDERR_TO_DEV_NULL |
                                    G_SPAWN_CLOEXEC_PIPES,
                                NULL, NULL, &pid, NULL, &out, NULL, error))
    return NULL;
  g_autoptr(GString) s = g_string_new(NULL);
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  gboolean timed_out = FALSE;
  for (;;) {
    int left = (int)((deadline - g_get_monotonic_time()) / 1000);
    struct pollfd p = { .fd = out, .events = POLLIN };
    if (left <= 0 || poll(&p, 1, left) == 0) {
      timed_out = TRUE;
      break;
    }
    char buf[4096];
    ssize_t n = read(out, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0 || s->len > max)
      break;
    g_string_append_len(s, buf, n);
  }
  close(out);
  if (timed_out)
    kill(pid, SIGKILL);
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
    ;
  g_spawn_close_pid(pid);
  if (status != NULL)
    *status = wstatus;
  if (timed_out) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "%s did not answer in %u s", argv[0],
                timeout_ms / 1000);
    return NULL;
  }
  return g_utf8_make_valid(s->str, (gssize)MIN(s->len, max));
}
