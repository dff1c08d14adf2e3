/* SPDX-License-Identifier: MIT */
/* How QEMU's exit is named (helper-stop) and what a crash leaves (helper-crash): a stop names
 * its step, the guest's own poweroff or announced shutdown is a stop, a signal, a non-zero
 * status or an unknowable status is a crash; the guest's console lines are made harmless
 * (hostile bytes, escapes, invalid UTF-8, endless lines); the crash record survives a reload
 * and goes when cleared; a panic on the console is seen. */
#include "helper-crash.h"
#include "helper-stop.h"
#include "helper-vm-launch.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>

static siginfo_t
exited(int status)
{
  return (siginfo_t){ .si_code = CLD_EXITED, .si_status = status };
}

static siginfo_t
killed(int sig)
{
  return (siginfo_t){ .si_code = CLD_KILLED, .si_status = sig };
}

static void
expect(HelperStopStep step, gboolean known, siginfo_t info, gboolean announced, const char *how,
       gboolean unexpected)
{
  gboolean got = !unexpected;
  g_autofree char *text = helper_stop_exit_how(step, known, &info, announced, &got);
  g_assert_cmpstr(text, ==, how);
  g_assert_cmpint(got, ==, unexpected);
}

static void
test_exit_names(void)
{
  expect(HELPER_STOP_AGENT, TRUE, exited(0), FALSE, "shut down by the guest agent", FALSE);
  expect(HELPER_STOP_POWERDOWN, TRUE, exited(0), FALSE, "powered off", FALSE);
  expect(HELPER_STOP_TERM, TRUE, killed(SIGTERM), FALSE, "terminated", FALSE);
  expect(HELPER_STOP_TERM, TRUE, exited(0), FALSE, "terminated", FALSE);
  expect(HELPER_STOP_KILL, TRUE, killed(SIGKILL), FALSE, "killed", FALSE);
  expect(HELPER_STOP_POWERDOWN, FALSE, exited(0), FALSE, "powered off", FALSE);
  /* No stop: the guest's own poweroff (or reboot) and announced shutdown are stops. */
  expect(HELPER_STOP_NONE, TRUE, exited(0), FALSE, "powered off by the guest", FALSE);
  expect(HELPER_STOP_NONE, TRUE, exited(0), TRUE, "shut down by the guest", FALSE);
  expect(HELPER_STOP_NONE, FALSE, exited(0), TRUE, "shut down by the guest", FALSE);
  /* Crashes. */
  expect(HELPER_STOP_NONE, TRUE, killed(SIGKILL), FALSE, "killed by signal 9", TRUE);
  expect(HELPER_STOP_NONE, TRUE, killed(SIGKILL), TRUE, "killed by signal 9", TRUE);
  expect(HELPER_STOP_NONE, TRUE, exited(1), FALSE, "exit status 1", TRUE);
  expect(HELPER_STOP_AGENT, TRUE, killed(SIGSEGV), FALSE, "killed by signal 11", TRUE);
  expect(HELPER_STOP_TERM, TRUE, killed(SIGKILL), FALSE, "killed by signal 9", TRUE);
  expect(HELPER_STOP_NONE, FALSE, exited(0), FALSE,
         "exit status unknown (QEMU was re-adopted after a helper restart)", TRUE);
}

static void
test_step_names(void)
{
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_NONE), ==, "");
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_AGENT), ==, "guest-agent");
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_POWERDOWN), ==, "power-button");
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_TERM), ==, "sigterm");
  g_assert_cmpstr(helper_stop_step_name(HELPER_STOP_KILL), ==, "sigkill");
}

static void
test_agent_cid_comes_from_the_argv(void)
{
  g_autoptr(LcvmConfig) c = lcvm_config_new_default();
  const char *with[] = { "qemu", "-device", "vhost-vsock-pci,guest-cid=1234", NULL };
  const char *without[] = { "qemu", "-device", "virtio-net-pci", NULL };
  const char *bogus[] = { "qemu",
                          "-device",
                          "vhost-vsock-pci,guest-cid=2",
                          "-device",
                          "vhost-vsock-pci,guest-cid=12x",
                          "-device",
                          "virtio-net,guest-cid=9",
                          NULL };
  const char *later[] = { "qemu", "-device", "vhost-vsock-pci,id=v0,guest-cid=77,bus=pcie.0",
                          NULL };
  g_assert_cmpuint(helper_stop_agent_cid(c, with, 1000), ==, 1234);
  g_assert_cmpuint(helper_stop_agent_cid(c, without, 1000), ==, 0);
  g_assert_cmpuint(helper_stop_agent_cid(c, bogus, 1000), ==, 0);
  g_assert_cmpuint(helper_stop_agent_cid(c, later, 1000), ==, 77);
  g_free(c->guest_agent_socket_dir);
  c->guest_agent_socket_dir = g_strdup("/run/agents");
  g_assert_cmpuint(helper_stop_agent_cid(c, without, 1000), ==, 1000);
  g_assert_cmpuint(helper_stop_agent_cid(c, with, 1000), ==, 1234);
}

static GStrv
lines_of(const char *bytes, gsize len, guint max)
{
  return helper_crash_console_lines(bytes, len, max);
}

static void
test_console_lines_are_harmless(void)
{
  static const char text[] = "boot\r\n\x1b]0;pwned\x07title\r\nbad \xff\xfe utf8\n"
                             "nul\0here\n\n\n  \nlast line  \r\n";
  g_auto(GStrv) lines = lines_of(text, sizeof text - 1, 10);
  g_assert_cmpuint(g_strv_length(lines), ==, 5);
  g_assert_cmpstr(lines[0], ==, "boot");
  g_assert_cmpstr(lines[1], ==, "?]0;pwned?title");
  g_assert_cmpstr(lines[2], ==, "bad ?? utf8");
  g_assert_cmpstr(lines[3], ==, "nul?here");
  g_assert_cmpstr(lines[4], ==, "last line");
  for (guint i = 0; lines[i] != NULL; i++)
    g_assert_true(g_utf8_validate(lines[i], -1, NULL));
}

static void
test_console_lines_are_capped(void)
{
  g_autofree char *longline = g_strnfill(100000, 'x');
  g_auto(GStrv) one = lines_of(longline, strlen(longline), 10);
  g_assert_cmpuint(g_strv_length(one), ==, 1);
  g_assert_cmpuint(g_utf8_strlen(one[0], -1), ==, HELPER_CRASH_LINE_MAX);
  GString *many = g_string_new(NULL);
  for (int i = 0; i < 50; i++)
    g_string_append_printf(many, "line %d\n", i);
  g_auto(GStrv) last = lines_of(many->str, many->len, 3);
  g_assert_cmpuint(g_strv_length(last), ==, 3);
  g_assert_cmpstr(last[0], ==, "line 47");
  g_assert_cmpstr(last[2], ==, "line 49");
  g_string_free(many, TRUE);
  g_auto(GStrv) none = lines_of("", 0, 3);
  g_assert_cmpuint(g_strv_length(none), ==, 0);
}

typedef struct {
  char *root;
  LcvmConfig *config;
} Tree;

static void
tree_setup(Tree *t, gconstpointer unused)
{
  t->root = g_dir_make_tmp("lcvm-crash-XXXXXX", NULL);
  t->config = lcvm_config_new_default();
  g_free(t->config->state_dir);
  t->config->state_dir = g_strdup(t->root);
  g_autofree char *inst = g_build_filename(t->root, "instances", "vm1", NULL);
  g_assert_cmpint(g_mkdir_with_parents(inst, 0700), ==, 0);
  g_autofree char *serial = g_build_filename(inst, LCVM_INSTANCE_SERIAL_LOG, NULL);
  g_assert_true(g_file_set_contents(serial,
                                    "old boot\n===== lium-cvm: boot @ 2026-12-06T00:00:00Z =====\n"
                                    "LCVM-GUEST-READY\n\x1b[31mred\x1b[0m\n",
                                    -1, NULL));
}

static void
tree_teardown(Tree *t, gconstpointer unused)
{
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", t->root);
  g_assert_cmpint(system(cmd), ==, 0);
  lcvm_config_free(t->config);
  g_free(t->root);
}

static void
test_crash_record_survives_a_reload(Tree *t, gconstpointer unused)
{
  g_autoptr(HelperCrash) crash = helper_crash_new(t->config, "vm1", "killed by signal 9");
  g_assert_cmpuint(g_strv_length(crash->console), ==, 2);
  g_assert_cmpstr(crash->console[0], ==, "LCVM-GUEST-READY");
  g_assert_cmpstr(crash->console[1], ==, "?[31mred?[0m");
  crash->exited_at = 1796529600; /* 2026-12-06T04:00:00Z */
  g_autofree char *text = helper_crash_describe(crash);
  g_assert_cmpstr(text, ==, "exited unexpectedly at 2026-12-06T04:00:00Z, killed by signal 9");
  g_assert_null(helper_crash_load(t->config, "vm1"));
  helper_crash_report(t->config, crash);
  g_auto(GStrv) names = helper_crash_names(t->config);
  g_assert_cmpstrv(names, ((const char *const[]){ "vm1", NULL }));
  g_autoptr(HelperCrash) back = helper_crash_load(t->config, "vm1");
  g_assert_nonnull(back);
  g_assert_cmpuint(back->exited_at, ==, crash->exited_at);
  g_assert_cmpstr(back->how, ==, crash->how);
  g_assert_cmpstrv(back->console, crash->console);
  helper_crash_clear(t->config, "vm1");
  g_assert_null(helper_crash_load(t->config, "vm1"));
  g_auto(GStrv) after = helper_crash_names(t->config);
  g_assert_cmpuint(g_strv_length(after), ==, 0);
}

static void
test_panic_on_the_console_is_seen(Tree *t, gconstpointer unused)
{
  g_assert_false(helper_crash_console_panicked(t->config, "vm1"));
  g_autofree char *serial =
      g_build_filename(t->root, "instances", "vm1", LCVM_INSTANCE_SERIAL_LOG, NULL);
  GString *log = g_string_new("===== lium-cvm: boot @ 2026-12-06T00:00:00Z =====\n"
                              "Kernel panic - not syncing: sysrq triggered crash\n");
  /* A call trace of 50 long lines (6 KiB) after the marker. */
  for (int i = 0; i < 50; i++)
    g_string_append_printf(log, " ? trace_line_%03d+0x10/0x20 %0100d\n", i, 0);
  g_string_append(log, "Rebooting in 1 seconds..\n");
  g_assert_true(g_file_set_contents(serial, log->str, -1, NULL));
  g_assert_true(helper_crash_console_panicked(t->config, "vm1"));
  /* A panic of an earlier boot is not this one's. */
  g_string_append(log, "===== lium-cvm: boot @ 2026-12-06T01:00:00Z =====\nfine\n");
  g_assert_true(g_file_set_contents(serial, log->str, -1, NULL));
  g_assert_false(helper_crash_console_panicked(t->config, "vm1"));
  g_string_free(log, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/stop/exit-names", test_exit_names);
  g_test_add_func("/stop/step-names", test_step_names);
  g_test_add_func("/stop/agent-cid", test_agent_cid_comes_from_the_argv);
  g_test_add_func("/crash/console/harmless", test_console_lines_are_harmless);
  g_test_add_func("/crash/console/capped", test_console_lines_are_capped);
  g_test_add("/crash/record/reload", Tree, NULL, tree_setup, test_crash_record_survives_a_reload,
             tree_teardown);
  g_test_add("/crash/console/panic", Tree, NULL, tree_setup, test_panic_on_the_console_is_seen,
             tree_teardown);
  return g_test_run();
}
