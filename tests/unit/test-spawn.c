/* SPDX-License-Identifier: MIT */
/* helper-spawn's parent-side rules, which need no root: what it refuses before forking and the
 * memlock formula; and, as root, the confined capture runner: exit status, signal, bounded
 * output, a timeout that kills what the child forked, confinement kept. (The confined child
 * itself is tested in tests/e2e/test_spawn.py.) */
#include "helper-spawn.h"
#include "capture-check.h"
#include "lcvm-error.h"

#include <signal.h>
#include <unistd.h>

#define NOBODY 65534

#define GIB (G_GUINT64_CONSTANT(1) << 30)

static void
test_memlock_is_ram_plus_one_gib_with_vfio(void)
{
  /* libvirt's tests/qemumemlocktest.c: 1 GiB guest + one hostdev → 2147483648. */
  g_assert_cmpuint(helper_spawn_memlock_for(GIB, 1), ==, G_GUINT64_CONSTANT(2147483648));
  /* Without a vIOMMU the factor stays 1 for any number of devices. */
  g_assert_cmpuint(helper_spawn_memlock_for(64 * GIB, 8), ==, 65 * GIB);
  g_assert_cmpuint(helper_spawn_memlock_for(64 * GIB, 0), ==, 0);
}

static void
assert_refused(const HelperSpawnOptions *opts, const char *fragment)
{
  g_autoptr(GError) error = NULL;
  HelperSpawnChild child = { -1, -1 };
  g_assert_false(helper_spawn(opts, &child, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull(strstr(error->message, fragment));
  g_assert_cmpint(child.pid, ==, -1);
}

static void
test_refuses_before_forking(void)
{
  const char *const relative[] = { "qemu-system-x86_64", NULL };
  const char *const absolute[] = { "/usr/bin/true", NULL };
  HelperSpawnOptions opts = { .argv = relative, .uid = 61000, .gid = 61000 };
  assert_refused(&opts, "absolute program path");

  opts.argv = absolute;
  opts.uid = 0;
  assert_refused(&opts, "never runs as root");
  opts.uid = 61000;
  opts.gid = 0;
  assert_refused(&opts, "never runs as root");

  opts.gid = 61000;
  HelperSpawnFd twice[] = { { 0, 3 }, { 1, 3 } };
  opts.fds = twice;
  opts.n_fds = G_N_ELEMENTS(twice);
  assert_refused(&opts, "named twice");
  HelperSpawnFd negative[] = { { -1, 3 } };
  opts.fds = negative;
  opts.n_fds = 1;
  assert_refused(&opts, "invalid");
}

/* Runs script under /bin/sh as nobody, confined as the QEMU probe is. */
static void
run_confined(const char *script, guint timeout_ms, gsize max_output, HelperCaptured *run)
{
  const char *argv[] = { "/bin/sh", "-c", script, NULL };
  HelperSpawnOptions options = {
    .argv = argv, .uid = NOBODY, .gid = NOBODY, .profile = LCVM_SECCOMP_QEMU
  };
  HelperCaptureOptions capture = { .timeout_ms = timeout_ms, .max_output = max_output };
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_spawn_capture(&options, &capture, run, &error));
  g_assert_no_error(error);
}

static gboolean
need_root(void)
{
  if (geteuid() == 0)
    return TRUE;
  g_test_skip("the confined spawn switches to uid 65534: needs root");
  return FALSE;
}

static void
test_capture_reports_exit_status_and_both_streams_confined(void)
{
  if (!need_root())
    return;
  g_auto(HelperCaptured) run = { 0 };
  run_confined("id -u; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; echo said >&2; exit 3",
               60000, 4096, &run);
  g_assert_false(run.timed_out);
  g_assert_true(run.exited);
  g_assert_cmpint(run.status, ==, 3);
  g_assert_true(g_str_has_prefix(run.out->str, "65534\n"));
  g_assert_nonnull(strstr(run.out->str, "NoNewPrivs:\t1"));
  g_assert_nonnull(strstr(run.out->str, "Seccomp:\t2"));
  g_assert_cmpstr(run.err->str, ==, "said\n");
  g_assert_false(run.out_cut || run.err_cut);
}

static void
test_capture_reports_the_signal_that_ended_it(void)
{
  if (!need_root())
    return;
  g_auto(HelperCaptured) run = { 0 };
  run_confined("kill -TERM $$", 60000, 4096, &run);
  g_assert_false(run.timed_out);
  g_assert_false(run.exited);
  g_assert_cmpint(run.signal, ==, SIGTERM);
}

static void
test_capture_keeps_only_the_last_bytes(void)
{
  if (!need_root())
    return;
  g_auto(HelperCaptured) run = { 0 };
  run_confined("head -c 100000 /dev/zero | tr '\\0' a; printf END", 60000, 1000, &run);
  g_assert_true(run.exited);
  g_assert_true(run.out_cut);
  g_assert_cmpuint(run.out->len, ==, 1000);
  g_assert_true(g_str_has_suffix(run.out->str, "aaaEND"));
}

/* At the timeout the child and what it forked are killed (capture-check.h). */
static void
test_capture_timeout_kills_the_grandchild_too(void)
{
  if (!need_root())
    return;
  become_subreaper(TRUE);
  g_auto(HelperCaptured) run = { 0 };
  run_confined(GRANDCHILD_SCRIPT, 500, 4096, &run);
  assert_killed_with_grandchild(&run);
  become_subreaper(FALSE);
}

static void
test_capture_refuses_what_the_spawn_refuses(void)
{
  const char *argv[] = { "/bin/true", NULL };
  HelperSpawnOptions options = { .argv = argv, .uid = 0, .gid = 0 };
  HelperCaptureOptions capture = { .timeout_ms = 1000, .max_output = 16 };
  g_auto(HelperCaptured) run = { 0 };
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_spawn_capture(&options, &capture, &run, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_assert_null(run.out);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/spawn/memlock-is-ram-plus-one-gib-with-vfio",
                  test_memlock_is_ram_plus_one_gib_with_vfio);
  g_test_add_func("/spawn/refuses-before-forking", test_refuses_before_forking);
  g_test_add_func("/spawn/capture-reports-exit-status-and-both-streams-confined",
                  test_capture_reports_exit_status_and_both_streams_confined);
  g_test_add_func("/spawn/capture-reports-the-signal-that-ended-it",
                  test_capture_reports_the_signal_that_ended_it);
  g_test_add_func("/spawn/capture-keeps-only-the-last-bytes",
                  test_capture_keeps_only_the_last_bytes);
  g_test_add_func("/spawn/capture-timeout-kills-the-grandchild-too",
                  test_capture_timeout_kills_the_grandchild_too);
  g_test_add_func("/spawn/capture-refuses-what-the-spawn-refuses",
                  test_capture_refuses_what_the_spawn_refuses);
  return g_test_run();
}
