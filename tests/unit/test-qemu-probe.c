/* SPDX-License-Identifier: MIT */
/* Reading `qemu-system-x86_64 --version` and caching it per binary (path, inode, size, mtime). */
#include "lcvm-error.h"
#include "lcvm-qemu-probe.h"

static LcvmQemuVersion
parse_ok(const char *output)
{
  g_autoptr(GError) error = NULL;
  LcvmQemuVersion v;
  g_assert_true(lcvm_qemu_version_parse(output, &v, &error));
  g_assert_no_error(error);
  return v;
}

static void
test_a_build_from_source_is_no_distro_package(void)
{
  LcvmQemuVersion v = parse_ok("QEMU emulator version 9.2.1\n"
                               "Copyright (c) 2003-2024 Fabrice Bellard and the QEMU Project "
                               "developers\n");
  g_assert_cmpuint(v.major, ==, 9);
  g_assert_cmpuint(v.minor, ==, 2);
  g_assert_cmpuint(v.patch, ==, 1);
  g_assert_cmpstr(v.text, ==, "9.2.1");
  g_assert_false(v.distro_package);
  v = parse_ok("QEMU emulator version 9.2.1 (v9.2.1-12-gdbcec07c08)\n");
  g_assert_false(v.distro_package);
}

static void
test_distribution_packages_are_recognised(void)
{
  LcvmQemuVersion v = parse_ok("QEMU emulator version 9.2.1 (Debian 1:9.2.1+ds-1ubuntu5)\n");
  g_assert_cmpstr(v.text, ==, "9.2.1");
  g_assert_true(v.distro_package);
  v = parse_ok("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"
               "Copyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n");
  g_assert_cmpuint(v.major, ==, 7);
  g_assert_cmpuint(v.patch, ==, 22);
  g_assert_true(v.distro_package);
  v = parse_ok("QEMU emulator version 10.1.0\n");
  g_assert_cmpuint(v.major, ==, 10);
  g_assert_false(v.distro_package);
}

/* The reference keeps the version word up to '+' as vm_config's qemu_version. */
static void
test_version_word_is_cut_at_plus(void)
{
  LcvmQemuVersion v = parse_ok("QEMU emulator version 8.2.2+tdx1.0 (Debian 2:8.2.2+ds)\n");
  g_assert_cmpstr(v.text, ==, "8.2.2");
  g_assert_cmpuint(v.minor, ==, 2);
  v = parse_ok("QEMU emulator version 9.2\n");
  g_assert_cmpstr(v.text, ==, "9.2");
  g_assert_cmpuint(v.patch, ==, 0);
}

static void
test_unreadable_output_is_an_error_not_a_guess(void)
{
  const char *bad[] = { "",
                        "bash: qemu-system-x86_64: command not found\n",
                        "QEMU emulator version 9.x.1\n",
                        "QEMU emulator version 9.2.1.4\n",
                        "QEMU emulator version 9.2.1-rc0\n",
                        "QEMU emulator version 99999999.0.0\n",
                        NULL };
  for (guint i = 0; bad[i]; i++) {
    g_autoptr(GError) error = NULL;
    LcvmQemuVersion v;
    g_assert_false(lcvm_qemu_version_parse(bad[i], &v, &error));
    g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  }
}

static void
test_version_comparison(void)
{
  LcvmQemuVersion v = parse_ok("QEMU emulator version 9.2.1\n");
  g_assert_true(lcvm_qemu_version_at_least(&v, 9, 2, 1));
  g_assert_true(lcvm_qemu_version_at_least(&v, 9, 0, 0));
  g_assert_true(lcvm_qemu_version_at_least(&v, 8, 99, 99));
  g_assert_false(lcvm_qemu_version_at_least(&v, 9, 2, 2));
  g_assert_false(lcvm_qemu_version_at_least(&v, 10, 0, 0));
}

static void
test_cache_is_keyed_by_path_inode_size_and_mtime(void)
{
  g_autoptr(LcvmQemuProbeCache) cache = lcvm_qemu_probe_cache_new();
  LcvmQemuVersion v = parse_ok("QEMU emulator version 9.2.1\n");
  struct stat st = { 0 };
  st.st_dev = 8;
  st.st_ino = 1234;
  st.st_size = 50000000;
  st.st_mtim.tv_sec = 1700000000;
  st.st_mtim.tv_nsec = 5;
  LcvmQemuVersion out;
  g_assert_false(lcvm_qemu_probe_cache_lookup(cache, "/usr/bin/qemu", &st, &out));
  lcvm_qemu_probe_cache_store(cache, "/usr/bin/qemu", &st, &v);
  g_assert_true(lcvm_qemu_probe_cache_lookup(cache, "/usr/bin/qemu", &st, &out));
  g_assert_cmpstr(out.text, ==, "9.2.1");
  g_assert_false(lcvm_qemu_probe_cache_lookup(cache, "/opt/qemu", &st, &out));

  struct stat changed = st;
  changed.st_mtim.tv_nsec = 6;
  g_assert_false(lcvm_qemu_probe_cache_lookup(cache, "/usr/bin/qemu", &changed, &out));
  changed = st;
  changed.st_size++;
  g_assert_false(lcvm_qemu_probe_cache_lookup(cache, "/usr/bin/qemu", &changed, &out));
  changed = st;
  changed.st_ino++;
  g_assert_false(lcvm_qemu_probe_cache_lookup(cache, "/usr/bin/qemu", &changed, &out));

  LcvmQemuVersion newer = parse_ok("QEMU emulator version 10.0.0\n");
  lcvm_qemu_probe_cache_store(cache, "/usr/bin/qemu", &changed, &newer);
  g_assert_true(lcvm_qemu_probe_cache_lookup(cache, "/usr/bin/qemu", &changed, &out));
  g_assert_cmpuint(out.major, ==, 10);
  g_assert_false(lcvm_qemu_probe_cache_lookup(cache, "/usr/bin/qemu", &st, &out));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qemu-probe/a-build-from-source-is-no-distro-package",
                  test_a_build_from_source_is_no_distro_package);
  g_test_add_func("/qemu-probe/distribution-packages-are-recognised",
                  test_distribution_packages_are_recognised);
  g_test_add_func("/qemu-probe/version-word-is-cut-at-plus", test_version_word_is_cut_at_plus);
  g_test_add_func("/qemu-probe/unreadable-output-is-an-error-not-a-guess",
                  test_unreadable_output_is_an_error_not_a_guess);
  g_test_add_func("/qemu-probe/version-comparison", test_version_comparison);
  g_test_add_func("/qemu-probe/cache-is-keyed-by-path-inode-size-and-mtime",
                  test_cache_is_keyed_by_path_inode_size_and_mtime);
  return g_test_run();
}
