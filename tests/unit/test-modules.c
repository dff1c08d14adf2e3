/* SPDX-License-Identifier: MIT */
/* LoadModules argument validation, presence check under a fake sysfs_root, persistence. */
#include "helper-modules.h"
#include "lcvm-error.h"
#include <glib/gstdio.h>
#include <string.h>
#include <sys/utsname.h>

static void
expect_invalid(const char *const *mods)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) v = helper_modules_validate(mods, &error);
  g_assert_null(v);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
}

static void
test_validate_refuses_bad_requests(void)
{
  const char *empty[] = { NULL };
  const char *nvidia[] = { "vfio_pci", "nvidia", NULL };
  const char *dots[] = { "../x", NULL };
  const char *blank[] = { "", NULL };
  expect_invalid(empty);
  expect_invalid(nvidia);
  expect_invalid(dots);
  expect_invalid(blank);
  /* an unknown flag: the dispatcher's check (test-authorizer.c) */
  g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func(g_free);
  for (int i = 0; i < 10000; i++)
    g_ptr_array_add(many, g_strdup("vfio"));
  g_ptr_array_add(many, NULL);
  expect_invalid((const char *const *)many->pdata);
}

static void
test_validate_normalises_and_dedups(void)
{
  const char *mods[] = { "vfio-pci", "vfio_pci", "vhost-vsock", NULL };
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) v = helper_modules_validate(mods, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(g_strv_length(v), ==, 2);
  g_assert_cmpstr(v[0], ==, "vfio_pci");
  g_assert_cmpstr(v[1], ==, "vhost_vsock");
}

static void
test_present_module_is_a_noop_and_persist_merges(void)
{
  g_autofree char *root = g_dir_make_tmp("lcvm-mod-XXXXXX", NULL);
  g_autofree char *sys = g_build_filename(root, "sys", NULL);
  g_autofree char *mod = g_build_filename(sys, "module", "vfio_pci", NULL);
  g_autofree char *mld = g_build_filename(root, "modules-load.d", NULL);
  g_assert_cmpint(g_mkdir_with_parents(mod, 0755), ==, 0);
  g_assert_cmpint(g_mkdir_with_parents(mld, 0755), ==, 0);
  g_autoptr(LcvmConfig) c = lcvm_config_new_default();
  g_free(c->sysfs_root);
  c->sysfs_root = g_strdup(sys);
  g_free(c->modules_load_dir);
  c->modules_load_dir = g_strdup(mld);

  const char *mods[] = { "vfio_pci", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_modules_load(c, mods, &error));
  g_assert_no_error(error);

  g_autofree char *conf = g_build_filename(mld, "lium-cvm.conf", NULL);
  g_assert_true(g_file_set_contents(conf, "vfio_iommu_type1\nnvidia\n", -1, NULL));
  g_assert_true(helper_modules_persist(c, mods, &error));
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(conf, &text, NULL, NULL));
  g_assert_nonnull(strstr(text, "vfio_iommu_type1\n"));
  g_assert_nonnull(strstr(text, "vfio_pci\n"));
  g_assert_null(strstr(text, "nvidia"));
  /* no temporary file left behind */
  g_autoptr(GDir) dir = g_dir_open(mld, 0, NULL);
  guint n = 0;
  while (g_dir_read_name(dir))
    n++;
  g_assert_cmpuint(n, ==, 1);
}

/* A module absent from sysfs_root goes to libkmod (opened on first use). This machine has no
 * /lib/modules, so the lookup fails and the error says what to install; on a host that has
 * modules the test skips rather than load a real module. */
static void
test_absent_module_reaches_libkmod_and_names_the_remedy(void)
{
  struct utsname uts;
  uname(&uts);
  g_autofree char *moddir = g_build_filename("/lib/modules", uts.release, NULL);
  if (g_file_test(moddir, G_FILE_TEST_IS_DIR)) {
    g_test_skip("this host has kernel modules: the test would load a real one");
    return;
  }
  g_autofree char *root = g_dir_make_tmp("lcvm-mod-XXXXXX", NULL);
  g_autoptr(LcvmConfig) c = lcvm_config_new_default();
  g_free(c->sysfs_root);
  c->sysfs_root = g_strdup(root);
  const char *mods[] = { "vhost_vsock", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_modules_load(c, mods, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "vhost_vsock was not found for kernel"));
  g_assert_nonnull(strstr(error->message, "linux-modules-extra"));
  g_rmdir(root);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/modules/validate_refuses_bad_requests", test_validate_refuses_bad_requests);
  g_test_add_func("/modules/validate_normalises_and_dedups", test_validate_normalises_and_dedups);
  g_test_add_func("/modules/present_module_is_a_noop_and_persist_merges",
                  test_present_module_is_a_noop_and_persist_merges);
  g_test_add_func("/modules/absent_module_reaches_libkmod_and_names_the_remedy",
                  test_absent_module_reaches_libkmod_and_names_the_remedy);
  return g_test_run();
}
