/* SPDX-License-Identifier: MIT */
/* helper-spawn's parent-side rules, which need no root: what it refuses before forking and the
 * memlock formula. (The confined child itself is tested in tests/e2e/test_spawn.py.) */
#include "helper-spawn.h"
#include "lcvm-error.h"

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

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/spawn/memlock-is-ram-plus-one-gib-with-vfio",
                  test_memlock_is_ram_plus_one_gib_with_vfio);
  g_test_add_func("/spawn/refuses-before-forking", test_refuses_before_forking);
  return g_test_run();
}
