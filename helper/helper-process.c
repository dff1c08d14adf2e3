/* SPDX-License-Identifier: MIT */
/* Process identity, signals, the exit watch and waiting, all through pidfds (see the
 * header). */
#include "helper-process.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"

#include <errno.h>
#include <glib-unix.h>
#include <poll.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>

/* ---- process identity ---- */

gboolean
helper_process_start_time(pid_t pid, guint64 *start_time, GError **error)
{
  g_autofree char *path = g_strdup_printf("/proc/%d/stat", (int)pid);
  g_autofree char *text = NULL;
  if (!g_file_get_contents(path, &text, NULL, error))
    return FALSE;
  /* comm (field 2) may hold spaces and parentheses: fields count from the last ')'. */
  const char *p = strrchr(text, ')');
  g_auto(GStrv) fields = p ? g_strsplit(p + 2, " ", 0) : NULL;
  /* After comm: field 3 is fields[0], so field 22 is fields[19]. */
  if (fields == NULL || g_strv_length(fields) < 20 ||
      !g_ascii_string_to_unsigned(fields[19], 10, 0, G_MAXUINT64, start_time, NULL)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s: unexpected format", path);
    return FALSE;
  }
  return TRUE;
}

static gboolean
cmdline_is(pid_t pid, const char *const *argv, const char *what, GError **error)
{
  g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", (int)pid);
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(path, &text, &len, error))
    return FALSE;
  g_autoptr(GString) want = g_string_new(NULL);
  for (guint i = 0; argv[i] != NULL; i++)
    g_string_append_len(want, argv[i], (gssize)strlen(argv[i]) + 1);
  if (len == want->len && memcmp(text, want->str, len) == 0)
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "pid %d runs another command line than the recorded %s", (int)pid, what);
  return FALSE;
}

int
helper_process_adopt_pid(pid_t pid, guint64 recorded_start, const char *const *argv,
                         const char *what, GError **error)
{
  lcvm_autofd int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s (pid %d) is gone: %s", what, (int)pid,
                g_strerror(errno));
    return -1;
  }
  /* The pidfd is taken first: if the pid was recycled after it, the checks below see the new
   * process and fail; if they pass, the pidfd is the recorded process for good. */
  guint64 start_time = 0;
  if (!helper_process_start_time(pid, &start_time, error) || !cmdline_is(pid, argv, what, error))
    return -1;
  if (start_time != recorded_start || helper_process_wait(pidfd, 0)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "pid %d is no longer the recorded %s (it started at another time or exited)",
                (int)pid, what);
    return -1;
  }
  return lcvm_steal_fd(&pidfd);
}

int
helper_process_adopt(const HelperRecord *record, GError **error)
{
  return helper_process_adopt_pid(record->pid, record->start_time,
                                  (const char *const *)record->argv, "QEMU", error);
}

/* ---- signals ---- */

int
helper_process_signal(int pidfd, int sig)
{
  if (pidfd_send_signal(pidfd, sig, NULL, 0) == 0 || errno == ESRCH)
    return 0;
  return errno;
}

/* ---- the exit watch ---- */

typedef struct {
  HelperExitFunc func;
  gpointer data;
  GDestroyNotify destroy;
} ExitWatch;

static gboolean
on_pidfd(gint fd, GIOCondition condition, gpointer data)
{
  ExitWatch *w = data;
  w->func(w->data);
  return G_SOURCE_REMOVE;
}

static void
exit_watch_free(gpointer p)
{
  ExitWatch *w = p;
  if (w->destroy != NULL)
    w->destroy(w->data);
  g_free(w);
}

guint
helper_process_watch_full(int pidfd, HelperExitFunc func, gpointer data, GDestroyNotify destroy)
{
  ExitWatch *w = g_new0(ExitWatch, 1);
  w->func = func;
  w->data = data;
  w->destroy = destroy;
  return g_unix_fd_add_full(G_PRIORITY_DEFAULT, pidfd, G_IO_IN, on_pidfd, w, exit_watch_free);
}

guint
helper_process_watch(int pidfd, HelperExitFunc func, gpointer data)
{
  return helper_process_watch_full(pidfd, func, data, NULL);
}

gboolean
helper_process_reap(int pidfd, siginfo_t *info)
{
  memset(info, 0, sizeof *info);
  int rc;
  do
    rc = waitid(P_PIDFD, (id_t)pidfd, info, WEXITED | WNOHANG);
  while (rc < 0 && errno == EINTR);
  return rc == 0 && info->si_pid != 0;
}

gboolean
helper_process_wait(int pidfd, guint timeout_ms)
{
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  for (;;) {
    struct pollfd p = { pidfd, POLLIN, 0 };
    gint64 left = (deadline - g_get_monotonic_time()) / 1000;
    int rc = poll(&p, 1, (int)MAX(left, 0));
    if (rc < 0 && errno == EINTR)
      continue;
    return rc > 0;
  }
}
