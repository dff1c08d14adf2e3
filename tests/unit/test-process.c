/* SPDX-License-Identifier: MIT */
/* Process handling through pidfds: a pid is adopted only while it still is the recorded
 * process (same start time, same argv, alive), a signal goes through the pidfd (and a process
 * that has already exited is no error), and the exit watch fires once in the main loop with
 * the child's exit status. */
#include "helper-process.h"
#include "lcvm-error.h"

#include <errno.h>
#include <signal.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

static GPid
spawn_sleep(char ***argv_out)
{
  char *argv[] = { "/bin/sleep", "30", NULL };
  GPid pid = 0;
  g_autoptr(GError) error = NULL;
  g_assert_true(
      g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &pid, &error));
  *argv_out = g_strdupv(argv);
  /* Until the exec happened the cmdline is the test's own. */
  for (int i = 0; i < 500; i++) {
    g_autofree char *path = g_strdup_printf("/proc/%d/cmdline", pid);
    g_autofree char *text = NULL;
    if (g_file_get_contents(path, &text, NULL, NULL) && g_str_equal(text, "/bin/sleep"))
      break;
    g_usleep(10000);
  }
  return pid;
}

static HelperRecord *
record_for(GPid pid, char **argv)
{
  HelperRecord *r = g_new0(HelperRecord, 1);
  r->name = g_strdup("vm1");
  r->pid = pid;
  r->argv = g_strdupv(argv);
  g_assert_true(helper_process_start_time(pid, &r->start_time, NULL));
  return r;
}

static void
test_adopts_only_the_recorded_living_process(void)
{
  g_auto(GStrv) argv = NULL;
  GPid pid = spawn_sleep(&argv);
  g_autoptr(HelperRecord) r = record_for(pid, argv);
  g_autoptr(GError) error = NULL;

  int pidfd = helper_process_adopt(r, &error);
  g_assert_no_error(error);
  g_assert_cmpint(pidfd, >=, 0);
  close(pidfd);

  r->start_time++;
  g_assert_cmpint(helper_process_adopt(r, &error), ==, -1);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_clear_error(&error);
  r->start_time--;

  g_free(r->argv[1]);
  r->argv[1] = g_strdup("31");
  g_assert_cmpint(helper_process_adopt(r, &error), ==, -1);
  g_assert_nonnull(strstr(error->message, "another command line"));
  g_clear_error(&error);
  g_free(r->argv[1]);
  r->argv[1] = g_strdup("30");

  /* Dead but not yet reaped: still not adoptable. */
  kill(pid, SIGKILL);
  g_usleep(100000);
  g_assert_cmpint(helper_process_adopt(r, &error), ==, -1);
  g_clear_error(&error);
  waitpid(pid, NULL, 0);
  g_assert_cmpint(helper_process_adopt(r, &error), ==, -1);
  g_assert_nonnull(strstr(error->message, "gone"));
}

static void
quit_on_exit(gpointer data)
{
  g_main_loop_quit(data);
}

static void
test_the_exit_watch_fires_and_reaps_the_child(void)
{
  g_auto(GStrv) argv = NULL;
  GPid pid = spawn_sleep(&argv);
  int pidfd = pidfd_open(pid, 0);
  g_assert_cmpint(pidfd, >=, 0);
  g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
  helper_process_watch(pidfd, quit_on_exit, loop);
  g_assert_false(helper_process_wait(pidfd, 50));
  kill(pid, SIGKILL);
  g_main_loop_run(loop);
  siginfo_t info;
  g_assert_true(helper_process_reap(pidfd, &info));
  g_assert_cmpint(info.si_code, ==, CLD_KILLED);
  g_assert_cmpint(info.si_status, ==, SIGKILL);
  close(pidfd);
}

static void
test_a_signal_goes_through_the_pidfd(void)
{
  g_auto(GStrv) argv = NULL;
  GPid pid = spawn_sleep(&argv);
  int pidfd = pidfd_open(pid, 0);
  g_assert_cmpint(pidfd, >=, 0);
  g_assert_cmpint(helper_process_signal(pidfd, SIGTERM), ==, 0);
  g_assert_true(helper_process_wait(pidfd, 10000));
  /* Exited, not yet reaped, then reaped: nothing left to signal is not an error. */
  g_assert_cmpint(helper_process_signal(pidfd, SIGKILL), ==, 0);
  siginfo_t info;
  g_assert_true(helper_process_reap(pidfd, &info));
  g_assert_cmpint(info.si_code, ==, CLD_KILLED);
  g_assert_cmpint(info.si_status, ==, SIGTERM);
  g_assert_cmpint(helper_process_signal(pidfd, SIGKILL), ==, 0);
  /* Not a pidfd at all: the errno comes back. */
  g_assert_cmpint(helper_process_signal(STDIN_FILENO, SIGKILL), ==, EBADF);
  close(pidfd);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/process/adopts_only_the_recorded_living_process",
                  test_adopts_only_the_recorded_living_process);
  g_test_add_func("/process/the_exit_watch_fires_and_reaps_the_child",
                  test_the_exit_watch_fires_and_reaps_the_child);
  g_test_add_func("/process/a_signal_goes_through_the_pidfd", test_a_signal_goes_through_the_pidfd);
  return g_test_run();
}
