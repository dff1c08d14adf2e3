/* SPDX-License-Identifier: MIT */
/* Starting a trusted root tool (see the header). GLib forks and execs it; between the two the
 * child only calls setsid(), which is async-signal-safe, so the helper's threads are no risk. */
#include "helper-tool.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void
new_session(gpointer data)
{
  setsid();
}

static gboolean
output_pipe(int fds[2], GError **error)
{
  if (pipe2(fds, O_CLOEXEC) == 0)
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot create a pipe: %s", g_strerror(errno));
  return FALSE;
}

gboolean
helper_tool_run(const HelperTool *tool, const HelperCaptureOptions *capture, HelperCaptured *result,
                GError **error)
{
  lcvm_autofd int out_read = -1, out_write = -1, err_read = -1, err_write = -1;
  int p[2];
  if (!output_pipe(p, error))
    return FALSE;
  out_read = p[0], out_write = p[1];
  if (!tool->merge_stderr) {
    if (!output_pipe(p, error))
      return FALSE;
    err_read = p[0], err_write = p[1];
  }
  GPid pid = 0;
  if (!g_spawn_async_with_pipes_and_fds(
          tool->cwd, tool->argv, tool->envp,
          G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDIN_FROM_DEV_NULL, new_session, NULL, -1, out_write,
          tool->merge_stderr ? out_write : err_write, NULL, NULL, 0, &pid, NULL, NULL, NULL, error))
    return FALSE;
  /* Only the tool may hold the write ends, or EOF never comes. */
  lcvm_close_fdp(&out_write);
  lcvm_close_fdp(&err_write);
  /* Not reaped (DO_NOT_REAP_CHILD), so the pid cannot have been reused yet. */
  lcvm_autofd int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0) {
    int saved = errno;
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "pidfd_open failed: %s", g_strerror(saved));
    return FALSE;
  }
  helper_capture(pid, pidfd, lcvm_steal_fd(&out_read), lcvm_steal_fd(&err_read), capture, result);
  return TRUE;
}
