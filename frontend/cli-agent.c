/* SPDX-License-Identifier: MIT */
/* The polkit text agent: pkttyagent registered for this process, started only when stdin
 * is a terminal, the caller is not root and the helper asked for interactive
 * authorization. It dies with us (PR_SET_PDEATHSIG) and is killed when we exit. */
#include "cli.h"
#include "lcvm-error.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static void
agent_child_setup(gpointer data)
{
  prctl(PR_SET_PDEATHSIG, SIGTERM);
}

gboolean
cli_agent_start(LcvmCli *cli, GError **error)
{
  int pipefd[2];
  g_autofree char *agent = g_find_program_in_path("pkttyagent");
  if (agent == NULL) {
    g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                        "pkttyagent is not installed (apt install pkexec)");
    return FALSE;
  }
  if (pipe2(pipefd, O_CLOEXEC) < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "pipe: %s", g_strerror(errno));
    return FALSE;
  }
  g_autofree char *pid = g_strdup_printf("%d", (int)getpid());
  const char *argv[] = { agent, "--notify-fd", "3", "--fallback", "--process", pid, NULL };
  const int source_fds[] = { pipefd[1] };
  const int target_fds[] = { 3 };
  GPid child = 0;
  gboolean ok = g_spawn_async_with_pipes_and_fds(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD,
                                                 agent_child_setup, NULL, -1, -1, -1, source_fds,
                                                 target_fds, 1, &child, NULL, NULL, NULL, error);
  close(pipefd[1]);
  if (!ok) {
    close(pipefd[0]);
    return FALSE;
  }
  /* pkttyagent closes the notify fd once it is registered. */
  char c;
  while (read(pipefd[0], &c, 1) > 0)
    ;
  close(pipefd[0]);
  cli->agent_pid = child;
  cli->agent_running = TRUE;
  return TRUE;
}

void
cli_agent_stop(LcvmCli *cli)
{
  if (!cli->agent_running)
    return;
  kill(cli->agent_pid, SIGTERM);
  waitpid(cli->agent_pid, NULL, 0);
  cli->agent_running = FALSE;
}
