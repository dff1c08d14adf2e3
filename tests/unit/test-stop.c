/* SPDX-License-Identifier: MIT */
/* The stop ladder as an act without a bus (helper_stop_ladder with a recording step callback),
 * against a real child process standing in for QEMU: the rungs it cannot take (no vsock
 * device, no QMP socket) say so and fall through to SIGTERM; --force starts there; the step
 * the ladder is on is published for the exit handler. */
#include "helper-stop.h"
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
  GPtrArray *messages;
  gboolean audited;
} Recorder;

static void
record(gpointer data, double progress, gboolean audit, const char *message)
{
  Recorder *r = data;
  g_ptr_array_add(r->messages, g_strdup(message));
  r->audited = r->audited || audit;
}

static gboolean
recorded(const Recorder *r, const char *text)
{
  for (guint i = 0; i < r->messages->len; i++)
    if (strstr(r->messages->pdata[i], text) != NULL)
      return TRUE;
  return FALSE;
}

/* A child that sleeps until a signal ends it, and its pidfd. */
static pid_t
start_child(int *pidfd)
{
  pid_t pid = fork();
  g_assert_cmpint(pid, >=, 0);
  if (pid == 0) {
    for (;;)
      pause();
  }
  *pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
  g_assert_cmpint(*pidfd, >=, 0);
  return pid;
}

static void
run_ladder(gboolean force)
{
  LcvmConfig *config = lcvm_config_new_default();
  int pidfd = -1;
  pid_t pid = start_child(&pidfd);
  Recorder r = { .messages = g_ptr_array_new_with_free_func(g_free) };
  gint step = HELPER_STOP_NONE;
  g_autofree char *qmp = g_strdup_printf("/nonexistent/lcvm-test-%d/qmp.sock", (int)getpid());
  HelperStopRequest req = {
    .config = config,
    .name = "vm1",
    .pid = pid,
    .pidfd = pidfd,
    .qmp_path = qmp,
    .agent_cid = 0,
    .timeout_s = 1,
    .force = force,
    .step = &step,
    .step_fn = record,
    .step_data = &r,
  };
  g_assert_true(helper_stop_ladder(&req));
  g_assert_cmpint(g_atomic_int_get(&step), ==, HELPER_STOP_TERM);
  g_autofree char *term = g_strdup_printf("sending SIGTERM to QEMU (pid %d)", (int)pid);
  g_assert_true(recorded(&r, term));
  g_assert_false(recorded(&r, "SIGKILL"));
  g_assert_cmpint(recorded(&r, "has no vsock device"), ==, !force);
  g_assert_cmpint(recorded(&r, "terminating QEMU instead"), ==, !force);
  g_assert_false(r.audited); /* the ladder's steps are progress, never audit records */

  int status = 0;
  g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
  g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
  close(pidfd);
  g_ptr_array_unref(r.messages);
  lcvm_config_free(config);
}

static void
test_unreachable_rungs_fall_through_to_sigterm(void)
{
  run_ladder(FALSE);
}

static void
test_force_starts_at_sigterm(void)
{
  run_ladder(TRUE);
}

static void
test_step_names(void)
{
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_AGENT), ==, "guest-agent");
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_POWERDOWN), ==, "power-button");
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_TERM), ==, "sigterm");
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_KILL), ==, "sigkill");
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_NONE), ==, "");
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/stop/unreachable-rungs-fall-through-to-sigterm",
                  test_unreachable_rungs_fall_through_to_sigterm);
  g_test_add_func("/stop/force-starts-at-sigterm", test_force_starts_at_sigterm);
  g_test_add_func("/stop/step-names", test_step_names);
  return g_test_run();
}
