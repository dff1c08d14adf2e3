/* SPDX-License-Identifier: MIT */
/* Starting a trusted root tool (see the header). GLib forks and execs it; between the two the
 * child only calls setsid(), which is async-signal-safe, so the helper's threads are no risk. */
#include "helper-tool.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"

#include <errno.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

static void
new_session(gpointer data)
{
  setsid();
}

gboolean
helper_tool_run(const HelperTool *tool, const HelperCaptureOptions *capture, HelperCaptured *result,
                GError **error)
{
  g_auto(HelperCapturePipes) pipes = { { -1, -1 }, { -1, -1 } };
  if (!helper_capture_pipes_open(&pipes, !tool->merge_stderr, error))
    return FALSE;
  int err_write = tool->merge_stderr ? pipes.out[1] : pipes.err[1];
  GPid pid = 0;
  if (!g_spawn_async_with_pipes_and_fds(tool->cwd, tool->argv, tool->envp,
                                        G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDIN_FROM_DEV_NULL,
                                        new_session, NULL, -1, pipes.out[1], err_write, NULL, NULL,
                                        0, &pid, NULL, NULL, NULL, error))
    return FALSE;
  /* Not reaped (DO_NOT_REAP_CHILD), so the pid cannot have been reused yet. */
  lcvm_autofd int pidfd = pidfd_open(pid, 0);
  if (pidfd < 0) {
    int saved = errno;
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "pidfd_open failed: %s", g_strerror(saved));
    return FALSE;
  }
  helper_capture(pid, pidfd, &pipes, capture, result);
  return TRUE;
}
