/* SPDX-License-Identifier: MIT */
/* Binding to vfio-pci and back on the fake HGX host, with the kernel simulator of
 * tests/fakes/fakepci.py acting on the writes asynchronously, as the kernel does. */
#include "fake-host.h"
#include "helper-vfio.h"
#include "lcvm-error.h"
#include "lcvm-pci.h"
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <unistd.h>

static char *
record_path(Fixture *f, const char *slot)
{
  return g_build_filename(f->config->runtime_dir, "vfio", slot, NULL);
}

static void
test_bind_then_unbind_restores_the_tree_exactly(void)
{
  Fixture f = { 0 };
  setup(&f, TRUE, "normal");
  g_autofree char *before = snapshot(&f);
  const char *slots[] = { "0000:19:00.0", "0000:db:00.0", NULL };
  g_autoptr(GError) error = NULL;

  g_assert_true(helper_vfio_bind(f.config, slots, NULL, NULL, &error));
  g_assert_no_error(error);
  for (guint i = 0; slots[i]; i++) {
    g_auto(LcvmPciState) st = state_of(&f, slots[i]);
    g_assert_cmpstr(st.driver, ==, "vfio-pci");
    g_assert_cmpstr(st.driver_override, ==, "vfio-pci");
    g_assert_nonnull(st.vfio_dev);
    g_autofree char *rec = record_path(&f, slots[i]);
    g_assert_true(g_file_test(rec, G_FILE_TEST_IS_REGULAR));
  }
  /* Idempotent: a second bind changes nothing. */
  g_autofree char *bound = snapshot(&f);
  g_assert_true(helper_vfio_bind(f.config, slots, NULL, NULL, &error));
  g_autofree char *bound_again = snapshot(&f);
  g_assert_cmpstr(bound, ==, bound_again);

  g_assert_true(helper_vfio_unbind(f.config, slots, NULL, NULL, &error));
  g_assert_no_error(error);
  g_auto(LcvmPciState) gpu = state_of(&f, "0000:19:00.0");
  g_assert_cmpstr(gpu.driver, ==, "nvidia");
  g_auto(LcvmPciState) none = state_of(&f, "0000:db:00.0");
  g_assert_null(none.driver);
  g_autofree char *after = snapshot(&f);
  g_assert_cmpstr(before, ==, after);
  g_autofree char *rec = record_path(&f, "0000:19:00.0");
  g_assert_false(g_file_test(rec, G_FILE_TEST_EXISTS));
  teardown(&f);
}

static void
test_unbind_without_a_record_lets_the_kernel_pick_and_unbound_slots_are_skipped(void)
{
  Fixture f = { 0 };
  setup(&f, TRUE, "normal");
  const char *slots[] = { "0000:3b:00.0", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_vfio_bind(f.config, slots, NULL, NULL, &error));
  g_autofree char *rec = record_path(&f, "0000:3b:00.0");
  g_assert_cmpint(g_unlink(rec), ==, 0); /* as after a reboot with vfio-pci.ids */
  const char *both[] = { "0000:3b:00.0", "0000:4c:00.0", NULL };
  g_assert_true(helper_vfio_unbind(f.config, both, NULL, NULL, &error));
  g_assert_no_error(error);
  for (int i = 0; i < 200; i++) {
    g_auto(LcvmPciState) st = state_of(&f, "0000:3b:00.0");
    if (g_strcmp0(st.driver, "nvidia") == 0)
      break;
    g_usleep(10 * 1000);
  }
  g_auto(LcvmPciState) st = state_of(&f, "0000:3b:00.0");
  g_assert_cmpstr(st.driver, ==, "nvidia");
  g_assert_null(st.driver_override);
  teardown(&f);
}

static void
test_bind_that_never_completes_times_out_and_restores(void)
{
  Fixture f = { 0 };
  setup(&f, TRUE, "never");
  g_autofree char *before = snapshot(&f);
  const char *slots[] = { "0000:19:00.0", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_vfio_bind(f.config, slots, NULL, NULL, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "did not bind to vfio-pci"));
  g_assert_nonnull(strstr(error->message, "restored 0000:19:00.0"));
  g_autofree char *after = snapshot(&f);
  g_assert_cmpstr(before, ==, after);
  teardown(&f);
}

static void
test_failure_midway_moves_every_changed_device_back(void)
{
  Fixture f = { 0 };
  setup(&f, TRUE, "fail-after=2");
  g_autofree char *before = snapshot(&f);
  const char *slots[] = { "0000:19:00.0", "0000:bb:00.0", "0000:5d:00.0", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_vfio_bind(f.config, slots, NULL, NULL, &error));
  g_assert_nonnull(strstr(error->message, "0000:5d:00.0"));
  g_assert_nonnull(strstr(error->message, "restored 0000:5d:00.0, 0000:bb:00.0, 0000:19:00.0"));
  g_autofree char *after = snapshot(&f);
  g_assert_cmpstr(before, ==, after);
  teardown(&f);
}

static void
test_bind_refuses_held_devices_and_non_viable_groups_without_changing_anything(void)
{
  Fixture f = { 0 };
  setup(&f, TRUE, "normal");
  g_autofree char *before = snapshot(&f);
  g_autoptr(GError) error = NULL;

  const char *shared[] = { "0000:19:00.0", "0000:cb:00.0", NULL };
  g_assert_false(helper_vfio_bind(f.config, shared, NULL, NULL, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE);
  g_assert_nonnull(strstr(error->message, "not viable"));
  g_clear_error(&error);

  /* nvidia-persistenced holds /dev/nvidia0, the node of 0000:19:00.0. */
  g_autofree char *fd_dir = g_build_filename(f.config->proc_root, "555", "fd", NULL);
  g_autofree char *comm = g_build_filename(f.config->proc_root, "555", "comm", NULL);
  g_autofree char *fd = g_build_filename(fd_dir, "3", NULL);
  g_autofree char *node = g_build_filename(f.config->dev_root, "nvidia0", NULL);
  g_assert_cmpint(g_mkdir_with_parents(fd_dir, 0755), ==, 0);
  g_assert_true(g_file_set_contents(comm, "nvidia-persiste\n", -1, NULL));
  g_assert_cmpint(symlink(node, fd), ==, 0);
  const char *held[] = { "0000:19:00.0", NULL };
  g_assert_false(helper_vfio_bind(f.config, held, NULL, NULL, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE);
  g_assert_nonnull(strstr(error->message, "process 555 (nvidia-persiste)"));
  g_unlink(fd);
  g_unlink(comm);
  g_rmdir(fd_dir);
  g_autofree char *pid_dir = g_build_filename(f.config->proc_root, "555", NULL);
  g_rmdir(pid_dir);

  g_autofree char *after = snapshot(&f);
  g_assert_cmpstr(before, ==, after);
  teardown(&f);
}

static void
test_bind_without_iommu_says_so(void)
{
  Fixture f = { 0 };
  setup(&f, FALSE, NULL);
  const char *slots[] = { "0000:19:00.0", NULL };
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_vfio_bind(f.config, slots, NULL, NULL, &error));
  g_assert_nonnull(strstr(error->message, "the IOMMU is off"));
  teardown(&f);
}

static void
expect_refused(Fixture *f, const char *const *slots, LcvmError code, const char *text)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) v = helper_vfio_resolve_slots(f->config, slots, &error);
  g_assert_null(v);
  g_assert_error(error, LCVM_ERROR, (gint)code);
  g_assert_nonnull(strstr(error->message, text));
}

static void
test_slots_are_validated_against_the_host(void)
{
  Fixture f = { 0 };
  setup(&f, TRUE, NULL);
  const char *dots[] = { "../../../etc", NULL };
  const char *path[] = { "0000:19:00.0/../0000:2a:00.0", NULL };
  const char *upper[] = { "0000:3B:00.0", NULL };
  const char *nic[] = { "0000:2a:00.0", NULL };
  const char *bridge[] = { "0000:18:01.0", NULL };
  const char *missing[] = { "0000:ee:00.0", NULL };
  const char *mixed[] = { "all", "0000:19:00.0", NULL };
  const char *empty[] = { NULL };
  expect_refused(&f, dots, LCVM_ERROR_INVALID_ARGUMENT, "not a PCI slot");
  expect_refused(&f, path, LCVM_ERROR_INVALID_ARGUMENT, "not a PCI slot");
  expect_refused(&f, upper, LCVM_ERROR_INVALID_ARGUMENT, "not a PCI slot");
  expect_refused(&f, nic, LCVM_ERROR_INVALID_ARGUMENT, "not an NVIDIA GPU or NVSwitch");
  expect_refused(&f, bridge, LCVM_ERROR_INVALID_ARGUMENT, "not an NVIDIA GPU or NVSwitch");
  expect_refused(&f, missing, LCVM_ERROR_NOT_FOUND, "no PCI device 0000:ee:00.0");
  expect_refused(&f, mixed, LCVM_ERROR_INVALID_ARGUMENT, "not a PCI slot");
  expect_refused(&f, empty, LCVM_ERROR_INVALID_ARGUMENT, "between 1 and");

  g_autoptr(GError) error = NULL;
  const char *all[] = { "all", NULL };
  g_auto(GStrv) every = helper_vfio_resolve_slots(f.config, all, &error);
  g_assert_cmpuint(g_strv_length(every), ==, 12);
  const char *dup[] = { "0000:19:00.0", "0000:05:00.0", "0000:19:00.0", NULL };
  g_auto(GStrv) two = helper_vfio_resolve_slots(f.config, dup, &error);
  g_assert_cmpuint(g_strv_length(two), ==, 2);
  g_assert_cmpstr(two[1], ==, "0000:05:00.0");
  teardown(&f);
}

static void
test_dma_limit_is_written_and_persisted(void)
{
  Fixture f = { 0 };
  setup(&f, TRUE, NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(helper_vfio_set_dma_limit(f.config, 16777216, 0, &error));
  g_autofree char *param = g_build_filename(f.config->sysfs_root, "module", "vfio_iommu_type1",
                                            "parameters", "dma_entry_limit", NULL);
  g_autofree char *value = NULL;
  g_assert_true(g_file_get_contents(param, &value, NULL, NULL));
  g_assert_cmpstr(value, ==, "16777216");
  g_autofree char *conf = g_build_filename(f.config->modprobe_dir, HELPER_DMA_LIMIT_FILE, NULL);
  g_assert_false(g_file_test(conf, G_FILE_TEST_EXISTS));

  g_assert_true(helper_vfio_set_dma_limit(f.config, 2097152, HELPER_DMA_LIMIT_PERSIST, &error));
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(conf, &text, NULL, NULL));
  g_assert_nonnull(strstr(text, "\noptions vfio_iommu_type1 dma_entry_limit=2097152\n"));
  teardown(&f);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/vfio/bind-then-unbind-restores-exactly",
                  test_bind_then_unbind_restores_the_tree_exactly);
  g_test_add_func("/vfio/unbind-without-record-reprobes",
                  test_unbind_without_a_record_lets_the_kernel_pick_and_unbound_slots_are_skipped);
  g_test_add_func("/vfio/never-completing-bind-times-out-and-restores",
                  test_bind_that_never_completes_times_out_and_restores);
  g_test_add_func("/vfio/failure-midway-restores-all",
                  test_failure_midway_moves_every_changed_device_back);
  g_test_add_func("/vfio/refuses-held-and-non-viable",
                  test_bind_refuses_held_devices_and_non_viable_groups_without_changing_anything);
  g_test_add_func("/vfio/without-iommu", test_bind_without_iommu_says_so);
  g_test_add_func("/vfio/slots-validated", test_slots_are_validated_against_the_host);
  g_test_add_func("/vfio/dma-limit", test_dma_limit_is_written_and_persisted);
  int status = g_test_run();
  templates_remove();
  return status;
}
