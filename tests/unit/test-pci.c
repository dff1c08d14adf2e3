/* SPDX-License-Identifier: MIT */
/* The PCI inventory, the sysfs layer and the GRUB tokens, on the fake HGX host of
 * tests/fakes/fakepci.py (8 GPUs, 4 NVSwitches, a NIC, shared IOMMU groups). */
#include "lcvm-error.h"
#include "lcvm-grub.h"
#include "lcvm-pci.h"
#include "lcvm-sysfs.h"
#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <unistd.h>

typedef struct {
  char *root;
  char *sys;
  char *dev;
  char *proc;
} Host;

/* Built once per run (building is slow) and shared: tests only add fake processes to it. */
static Host hosts[2];

static void host_build(Host *h, const char *extra_arg);

static const Host *
fake_host(gboolean iommu)
{
  if (hosts[iommu].root == NULL)
    host_build(&hosts[iommu], iommu ? NULL : "--no-iommu");
  return &hosts[iommu];
}

static void
host_build(Host *h, const char *extra_arg)
{
  h->root = g_dir_make_tmp("lcvm-pci-XXXXXX", NULL);
  g_autofree char *script = g_test_build_filename(G_TEST_DIST, "..", "fakes", "fakepci.py", NULL);
  const char *argv[] = { "python3", script, "build", h->root, extra_arg, NULL };
  g_autoptr(GError) error = NULL;
  int status = 0;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                             &status, &error));
  g_assert_no_error(error);
  g_assert_true(g_spawn_check_wait_status(status, NULL));
  h->sys = g_build_filename(h->root, "sys", NULL);
  h->dev = g_build_filename(h->root, "dev", NULL);
  h->proc = g_build_filename(h->root, "proc", NULL);
}

static void
host_free(Host *h)
{
  const char *argv[] = { "rm", "-rf", h->root, NULL };
  g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free(h->root);
  g_free(h->sys);
  g_free(h->dev);
  g_free(h->proc);
}

static LcvmPciInventory *
inventory(const Host *h)
{
  g_autoptr(GError) error = NULL;
  LcvmPciInventory *inv = lcvm_pci_inventory_new(h->sys, &error);
  g_assert_no_error(error);
  g_assert_nonnull(inv);
  return inv;
}

static void
test_inventory_lists_gpus_and_nvswitches_in_slot_order(void)
{
  const Host *h = fake_host(TRUE);
  g_autoptr(LcvmPciInventory) inv = inventory(h);
  g_assert_cmpuint(inv->devices->len, ==, 12);
  g_assert_true(inv->iommu_active);
  guint gpus = 0;
  for (guint i = 0; i < inv->devices->len; i++) {
    LcvmPciDevice *d = inv->devices->pdata[i];
    g_assert_cmphex(d->vendor_id, ==, 0x10de);
    if (i > 0)
      g_assert_cmpstr(((LcvmPciDevice *)inv->devices->pdata[i - 1])->slot, <, d->slot);
    gpus += d->kind == LCVM_PCI_GPU;
  }
  g_assert_cmpuint(gpus, ==, 8);
  g_assert_null(lcvm_pci_inventory_find(inv, "0000:2a:00.0")); /* the NIC */

  LcvmPciDevice *h200 = lcvm_pci_inventory_find(inv, "0000:19:00.0");
  g_assert_nonnull(h200);
  g_assert_cmpstr(h200->model, ==, "GH100 [H200 SXM 141GB]");
  g_assert_cmpstr(h200->arch, ==, "hopper");
  g_assert_cmphex(h200->class_code, ==, 0x030200);
  g_assert_cmphex(h200->subsys_id, ==, 0x18be);
  g_assert_cmpint(h200->numa_node, ==, 0);
  g_assert_cmpstr(h200->state.driver, ==, "nvidia");
  g_assert_null(h200->state.driver_override);
  g_assert_cmpint(h200->state.iommu_group, >=, 0);
  g_assert_null(h200->state.vfio_dev);

  LcvmPciDevice *unbound = lcvm_pci_inventory_find(inv, "0000:db:00.0");
  g_assert_null(unbound->state.driver);
  g_assert_cmpint(unbound->numa_node, ==, 1);
  LcvmPciDevice *sw = lcvm_pci_inventory_find(inv, "0000:05:00.0");
  g_assert_cmpint(sw->kind, ==, LCVM_PCI_NVSWITCH);
  g_assert_cmpstr(sw->model, ==, "GH100 [H100 NVSwitch]");
}

static void
test_inventory_of_a_host_without_nvidia_is_empty_and_a_missing_tree_is_an_error(void)
{
  g_autofree char *root = g_dir_make_tmp("lcvm-pci-XXXXXX", NULL);
  g_autofree char *devices = g_build_filename(root, "bus", "pci", "devices", NULL);
  g_assert_cmpint(g_mkdir_with_parents(devices, 0755), ==, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(root, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(inv->devices->len, ==, 0);
  g_assert_false(inv->iommu_active);

  /* libpci's fatal error comes back as a GError instead of exiting the process. */
  g_autofree char *missing = g_build_filename(root, "nothing-here", NULL);
  g_autoptr(LcvmPciInventory) none = lcvm_pci_inventory_new(missing, &error);
  g_assert_null(none);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "nothing-here"));
  g_rmdir(devices);
}

static void
test_without_iommu_devices_have_no_group(void)
{
  const Host *h = fake_host(FALSE);
  g_autoptr(LcvmPciInventory) inv = inventory(h);
  g_assert_false(inv->iommu_active);
  g_assert_false(lcvm_pci_iommu_active(h->sys));
  for (guint i = 0; i < inv->devices->len; i++)
    g_assert_cmpint(((LcvmPciDevice *)inv->devices->pdata[i])->state.iommu_group, ==, -1);
}

/* A fake /proc/PID/fd entry pointing at path. */
static void
fake_process(const Host *h, const char *pid, const char *comm, const char *path)
{
  g_autofree char *fd_dir = g_build_filename(h->proc, pid, "fd", NULL);
  g_autofree char *comm_file = g_build_filename(h->proc, pid, "comm", NULL);
  g_autofree char *link = g_build_filename(fd_dir, "7", NULL);
  g_assert_cmpint(g_mkdir_with_parents(fd_dir, 0755), ==, 0);
  g_assert_true(g_file_set_contents(comm_file, comm, -1, NULL));
  g_assert_cmpint(symlink(path, link), ==, 0);
}

static void
test_holders_are_found_through_vfio_group_and_nvidia_nodes(void)
{
  const Host *h = fake_host(TRUE);
  g_autoptr(LcvmPciInventory) before = inventory(h);
  LcvmPciDevice *gpu = lcvm_pci_inventory_find(before, "0000:3b:00.0");
  g_autofree char *group = g_strdup_printf("%d", gpu->state.iommu_group);
  g_autofree char *group_node = g_build_filename(h->dev, "vfio", group, NULL);
  g_autofree char *nvidia0 = g_build_filename(h->dev, "nvidia0", NULL);
  g_assert_true(g_file_set_contents(group_node, "", 0, NULL));
  fake_process(h, "4242", "qemu-system-x86\n", group_node);
  fake_process(h, "77", "nvidia-persiste\n", nvidia0);

  g_autoptr(LcvmPciInventory) inv = inventory(h);
  lcvm_pci_find_holders(inv, h->dev, h->proc);
  g_assert_true(inv->holders_complete);
  LcvmPciDevice *held = lcvm_pci_inventory_find(inv, "0000:3b:00.0");
  g_assert_cmpuint(held->holders->len, ==, 1);
  LcvmPciHolder *q = held->holders->pdata[0];
  g_assert_cmpint(q->pid, ==, 4242);
  g_assert_cmpstr(q->command, ==, "qemu-system-x86");
  g_assert_cmpstr(q->path, ==, group_node);
  /* nvidia0 is the minor of the first GPU on nvidia (fake /proc/driver/nvidia/gpus). */
  LcvmPciDevice *first = lcvm_pci_inventory_find(inv, "0000:19:00.0");
  g_assert_cmpuint(first->holders->len, ==, 1);
  g_assert_cmpint(((LcvmPciHolder *)first->holders->pdata[0])->pid, ==, 77);
  g_assert_cmpuint(lcvm_pci_inventory_find(inv, "0000:4c:00.0")->holders->len, ==, 0);
}

static void
test_group_viability_follows_the_kernel_rule(void)
{
  const Host *h = fake_host(TRUE);
  g_autoptr(LcvmPciInventory) inv = inventory(h);
  int shared_nic = lcvm_pci_inventory_find(inv, "0000:cb:00.0")->state.iommu_group;
  int with_bridge = lcvm_pci_inventory_find(inv, "0000:bb:00.0")->state.iommu_group;
  const char *gpu_only[] = { "0000:cb:00.0", NULL };
  const char *gpu_and_nic[] = { "0000:cb:00.0", "0000:cb:00.1", NULL };
  g_autoptr(GError) error = NULL;

  g_assert_false(lcvm_pci_group_viable(h->sys, shared_nic, gpu_only, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE);
  g_assert_nonnull(strstr(error->message, "0000:cb:00.1"));
  g_assert_nonnull(strstr(error->message, "mlx5_core"));
  g_clear_error(&error);
  g_assert_true(lcvm_pci_group_viable(h->sys, shared_nic, gpu_and_nic, &error));
  const char *bb[] = { "0000:bb:00.0", NULL };
  g_assert_true(lcvm_pci_group_viable(h->sys, with_bridge, bb, &error));
  g_assert_no_error(error);
}

static void
test_model_table_knows_recent_ids_and_architectures(void)
{
  g_assert_cmpstr(lcvm_pci_model_name(0x10de, 0x2335), ==, "GH100 [H200 SXM 141GB]");
  g_assert_cmpstr(lcvm_pci_model_name(0x10de, 0x2901), ==, "GB100 [B200]");
  g_assert_null(lcvm_pci_model_name(0x10de, 0x20b0)); /* A100: pci.ids has it */
  g_assert_null(lcvm_pci_model_name(0x15b3, 0x2335));
  g_assert_cmpstr(lcvm_pci_arch(0x10de, 0x2324, LCVM_PCI_GPU), ==, "hopper");
  g_assert_cmpstr(lcvm_pci_arch(0x10de, 0x2950, LCVM_PCI_GPU), ==, "blackwell");
  g_assert_null(lcvm_pci_arch(0x10de, 0x20b0, LCVM_PCI_GPU));
  g_assert_null(lcvm_pci_arch(0x10de, 0x1af1, LCVM_PCI_NVSWITCH));
}

static void
test_sysfs_reads_writes_and_never_creates_or_follows(void)
{
  g_autofree char *dir = g_dir_make_tmp("lcvm-sysfs-XXXXXX", NULL);
  g_autofree char *attr = g_build_filename(dir, "driver_override", NULL);
  g_autofree char *link = g_build_filename(dir, "trap", NULL);
  g_assert_true(g_file_set_contents(attr, "(null)\n", -1, NULL));
  g_assert_cmpint(symlink(attr, link), ==, 0);
  g_autoptr(GError) error = NULL;

  g_autofree char *v = lcvm_sysfs_read(dir, "driver_override", &error);
  g_assert_cmpstr(v, ==, "(null)");
  g_assert_true(lcvm_sysfs_write(dir, "driver_override", "vfio-pci", &error));
  g_autofree char *w = lcvm_sysfs_read(dir, "driver_override", &error);
  g_assert_cmpstr(w, ==, "vfio-pci");

  g_assert_false(lcvm_sysfs_write(dir, "unbind", "0000:19:00.0", &error));
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error(&error);
  g_autofree char *created = g_build_filename(dir, "unbind", NULL);
  g_assert_false(g_file_test(created, G_FILE_TEST_EXISTS));

  g_assert_false(lcvm_sysfs_write(dir, "trap", "x", &error));
  g_clear_error(&error);
  g_autofree char *through = lcvm_sysfs_read(dir, "trap", &error);
  g_assert_null(through);
  g_clear_error(&error);
  g_autofree char *target = lcvm_sysfs_link_name(dir, "trap");
  g_assert_cmpstr(target, ==, "driver_override");
  g_assert_null(lcvm_sysfs_link_name(dir, "driver_override"));

  guint64 n = 0;
  g_assert_true(g_file_set_contents(attr, "0x10de\n", -1, NULL));
  g_assert_true(lcvm_sysfs_read_uint(dir, "driver_override", &n, &error));
  g_assert_cmphex(n, ==, 0x10de);
  g_unlink(link);
  g_unlink(attr);
  g_rmdir(dir);
}

static gboolean
file_exists(gpointer path)
{
  return g_file_test(path, G_FILE_TEST_EXISTS);
}

static gpointer
create_later(gpointer path)
{
  g_usleep(100 * 1000);
  g_file_set_contents(path, "", 0, NULL);
  return NULL;
}

static void
test_sysfs_wait_sees_a_late_effect_and_gives_up_at_the_deadline(void)
{
  g_autofree char *dir = g_dir_make_tmp("lcvm-wait-XXXXXX", NULL);
  g_autofree char *path = g_build_filename(dir, "vfio0", NULL);
  GThread *t = g_thread_new("effect", create_later, path);
  g_assert_true(lcvm_sysfs_wait(file_exists, path, 2000));
  g_thread_join(t);
  g_unlink(path);
  gint64 start = g_get_monotonic_time();
  g_assert_false(lcvm_sysfs_wait(file_exists, path, 200));
  gint64 waited = g_get_monotonic_time() - start;
  g_assert_cmpint(waited, >=, 200 * 1000);
  g_assert_cmpint(waited, <, 1000 * 1000);
  g_rmdir(dir);
}

static void
test_grub_tokens_never_narrow_vfio_ids(void)
{
  const char *present[] = { "10DE:2335", "10de:22a3", "10de:2335", NULL };
  g_autofree char *fresh = lcvm_grub_tokens(present, "ro quiet");
  g_assert_cmpstr(fresh, ==,
                  "kvm_intel.tdx=on intel_iommu=on iommu=pt nohibernate "
                  "vfio-pci.ids=10de:2335,10de:22a3 vfio_iommu_type1.dma_entry_limit=16777216");
  /* A wedged GPU (10de:2330) missing from the bus keeps its id. */
  g_autofree char *kept =
      lcvm_grub_tokens(present, "ro vfio-pci.ids=10DE:2330,10de:2335 x vfio-pci.ids=10de:abcd\n");
  g_assert_nonnull(strstr(kept, " vfio-pci.ids=10de:2335,10de:22a3,10de:2330,10de:abcd "));
  g_autofree char *none = lcvm_grub_tokens(NULL, NULL);
  g_assert_null(strstr(none, "vfio-pci.ids"));
}

static void
test_grub_advice_for_the_fake_host(void)
{
  const Host *h = fake_host(FALSE);
  g_autofree char *cmdline = g_build_filename(h->proc, "cmdline", NULL);
  g_assert_true(g_file_set_contents(cmdline, "ro vfio-pci.ids=10de:2331\n", -1, NULL));
  g_autoptr(GError) error = NULL;
  g_autofree char *tokens = lcvm_grub_tokens_for_host(h->sys, h->proc, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(tokens, ==,
                  "kvm_intel.tdx=on intel_iommu=on iommu=pt nohibernate "
                  "vfio-pci.ids=10de:22a3,10de:2335,10de:2330,10de:2331 "
                  "vfio_iommu_type1.dma_entry_limit=16777216");
  g_autofree char *advice = lcvm_grub_advice(h->sys, h->proc, &error);
  g_assert_nonnull(strstr(advice, "GRUB_CMDLINE_LINUX_DEFAULT"));
  g_assert_nonnull(strstr(advice, tokens));
  g_assert_nonnull(strstr(advice, "update-grub && sudo reboot"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/pci/inventory-lists-gpus-and-nvswitches-in-slot-order",
                  test_inventory_lists_gpus_and_nvswitches_in_slot_order);
  g_test_add_func("/pci/empty-host-and-missing-tree",
                  test_inventory_of_a_host_without_nvidia_is_empty_and_a_missing_tree_is_an_error);
  g_test_add_func("/pci/without-iommu-no-groups", test_without_iommu_devices_have_no_group);
  g_test_add_func("/pci/holders-through-vfio-and-nvidia-nodes",
                  test_holders_are_found_through_vfio_group_and_nvidia_nodes);
  g_test_add_func("/pci/group-viability", test_group_viability_follows_the_kernel_rule);
  g_test_add_func("/pci/model-table", test_model_table_knows_recent_ids_and_architectures);
  g_test_add_func("/sysfs/read-write-no-create-no-follow",
                  test_sysfs_reads_writes_and_never_creates_or_follows);
  g_test_add_func("/sysfs/wait", test_sysfs_wait_sees_a_late_effect_and_gives_up_at_the_deadline);
  g_test_add_func("/grub/tokens-never-narrow", test_grub_tokens_never_narrow_vfio_ids);
  g_test_add_func("/grub/advice-for-host", test_grub_advice_for_the_fake_host);
  int status = g_test_run();
  for (guint i = 0; i < G_N_ELEMENTS(hosts); i++)
    if (hosts[i].root != NULL)
      host_free(&hosts[i]);
  return status;
}
