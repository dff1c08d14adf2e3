/* SPDX-License-Identifier: MIT */
/* Runtime records and process identity: a record reads back exactly as written, a pid is
 * adopted only while it still is the recorded process (same start time, same argv, alive),
 * and the exit watch fires once in the main loop with the child's exit status. */
#include "helper-supervise.h"
#include "lcvm-error.h"

#include <glib/gstdio.h>
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
  helper_supervise_watch(pidfd, quit_on_exit, loop);
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
test_a_record_reads_back_as_written(void)
{
  if (geteuid() != 0) {
    g_test_skip("runtime_dir must be root-owned: needs root");
    return;
  }
  g_autofree char *dir = g_dir_make_tmp("lcvm-supervise-XXXXXX", NULL);
  g_autofree char *runtime = g_build_filename(dir, "run", NULL);
  g_autofree char *text = g_strdup_printf("[paths]\nruntime_dir=%s\n", runtime);
  g_autoptr(LcvmConfig) config = lcvm_config_load_data(text, NULL);
  const char *argv[] = { "/usr/bin/qemu-system-x86_64", "-append", "a;b c=\"d\"", NULL };
  const char *devices[] = { "0000:19:00.0", NULL };
  const char *ports[] = { "tcp:2200", NULL };
  const char *none[] = { NULL };
  HelperReservation res = { 61000, 61001, 1000, 40000, (GStrv)devices, (GStrv)ports };
  HelperRecord r = { "vm-1",       4242,        123456, 1764230037, (GStrv)argv, &res,
                     (GStrv)ports, (GStrv)none, "c0",   "d1",       "7.2.19" };
  const char *bridge_argv[] = { "/usr/libexec/lium-cvm-hostapi", "--peer-uid=61000", NULL };
  r.bridge_pid = 4243;
  r.bridge_start_time = 123457;
  r.bridge_argv = (GStrv)bridge_argv;
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_record_write(config, &r, &error));
  g_autoptr(HelperRecord) back = helper_record_load(config, "vm-1", &error);
  g_assert_no_error(error);
  g_assert_cmpint(back->pid, ==, 4242);
  g_assert_cmpuint(back->start_time, ==, 123456);
  g_assert_true(g_strv_equal((const char *const *)back->argv, argv));
  g_assert_cmpuint(back->reservation->bridge_uid, ==, 61001);
  g_assert_cmpuint(back->reservation->hostapi_port, ==, 40000);
  g_assert_true(g_strv_equal((const char *const *)back->reservation->devices, devices));
  g_assert_cmpuint(g_strv_length(back->dev_nodes), ==, 0);
  g_assert_cmpstr(back->qemu_version, ==, "7.2.19");
  g_assert_cmpint(back->bridge_pid, ==, 4243);
  g_assert_cmpuint(back->bridge_start_time, ==, 123457);
  g_assert_true(g_strv_equal((const char *const *)back->bridge_argv, bridge_argv));
  g_auto(GStrv) names = helper_runtime_names(config);
  g_assert_cmpstr(names[0], ==, "vm-1");
  g_assert_true(helper_runtime_remove(config, "vm-1", &error));
  g_assert_null(helper_record_load(config, "vm-1", &error));
  g_rmdir(runtime);
  g_rmdir(dir);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/supervise/adopts_only_the_recorded_living_process",
                  test_adopts_only_the_recorded_living_process);
  g_test_add_func("/supervise/the_exit_watch_fires_and_reaps_the_child",
                  test_the_exit_watch_fires_and_reaps_the_child);
  g_test_add_func("/supervise/a_record_reads_back_as_written", test_a_record_reads_back_as_written);
  return g_test_run();
}
