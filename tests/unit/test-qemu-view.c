/* SPDX-License-Identifier: MIT */
/* What a VM's QEMU sees (helper-qemu-view.c over helper-sandbox-ns.c), read back as the plan's
 * steps: the base view, a QEMU installed outside /usr, the share, and each device node the spec
 * needs — and nothing the spec does not need. (Entering the view is tested with real processes
 * in tests/e2e/test_spawn.py and test_qemu_guest.py.) */
#include "helper-qemu-view.h"
#include "lcvm-error.h"

#include <glib/gstdio.h>
#include <unistd.h>

typedef struct {
  char *dev_root;
  LcvmConfig config;
  LcvmQemuSpec spec;
  GPtrArray *dev_nodes;
} Fixture;

/* A dev_root whose entries are links to real character devices (stat follows them). */
static void
fixture_setup(Fixture *f, gconstpointer data)
{
  f->dev_root = g_dir_make_tmp("lcvm-view-XXXXXX", NULL);
  g_autofree char *vfio = g_build_filename(f->dev_root, "vfio", NULL);
  g_assert_cmpint(g_mkdir(vfio, 0755), ==, 0);
  const char *links[][2] = { { "kvm", "/dev/null" },
                             { "vhost-vsock", "/dev/zero" },
                             { "vfio/vfio", "/dev/full" },
                             { "vfio/12", "/dev/null" } };
  for (guint i = 0; i < G_N_ELEMENTS(links); i++) {
    g_autofree char *path = g_build_filename(f->dev_root, links[i][0], NULL);
    g_assert_cmpint(symlink(links[i][1], path), ==, 0);
  }
  g_autofree char *plain = g_build_filename(f->dev_root, "not-a-device", NULL);
  g_assert_true(g_file_set_contents(plain, "", 0, NULL));
  f->config.dev_root = f->dev_root;
  f->spec = (LcvmQemuSpec){
    .qemu_path = "/usr/bin/qemu-system-x86_64",
    .accel = "tcg",
    .shared_dir = "/var/lib/lium-cvm/instances/vm1/shared",
    .hugepages_dir = "/dev/hugepages",
  };
  f->dev_nodes = g_ptr_array_new_with_free_func(g_free);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
  const char *names[] = { "kvm", "vhost-vsock", "vfio/vfio", "vfio/12", "not-a-device", "vfio" };
  for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
    g_autofree char *path = g_build_filename(f->dev_root, names[i], NULL);
    g_remove(path);
  }
  g_rmdir(f->dev_root);
  g_free(f->dev_root);
  g_ptr_array_unref(f->dev_nodes);
}

/* The plan's steps as text, one per line. */
static char *
view_steps(Fixture *f)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperSandbox) sb = helper_qemu_view(&f->config, &f->spec, 61000, f->dev_nodes, &error);
  g_assert_no_error(error);
  GString *out = g_string_new("");
  for (int i = 0;; i++) {
    g_autofree char *step = helper_sandbox_describe(sb, i);
    if (step == NULL)
      break;
    g_string_append_printf(out, "%s\n", step);
  }
  return g_string_free(out, FALSE);
}

static void
assert_steps_include(const char *steps, const char *const *wanted, gsize n)
{
  for (gsize i = 0; i < n; i++)
    if (strstr(steps, wanted[i]) == NULL)
      g_error("missing step %s in:\n%s", wanted[i], steps);
}

static void
test_tcg_guest_sees_the_base_view_and_its_share(Fixture *f, gconstpointer data)
{
  g_autofree char *steps = view_steps(f);
  const char *present[] = {
    "unshare the mount and IPC namespaces\n",
    "bind-mount onto /newroot/usr from /oldroot/usr\n",
    "bind-mount onto /newroot/sys from /oldroot/sys\n",
    "mount a procfs on /newroot/proc\n",
    "mount a tmpfs on /newroot/tmp\n",
    "mount a tmpfs on /newroot/dev/shm\n",
    "create the device node /newroot/dev/null\n",
    "bind-mount onto /newroot/var/lib/lium-cvm/instances/vm1/shared from "
    "/oldroot/var/lib/lium-cvm/instances/vm1/shared\n",
    "detach /oldroot\n",
    "remount read-only /\n",
  };
  assert_steps_include(steps, present, G_N_ELEMENTS(present));
  const char *absent[] = { "/dev/kvm", "vhost-vsock", "/dev/vfio", "hugepages",
                           "/home",    "/var/run",    "/run/" };
  for (guint i = 0; i < G_N_ELEMENTS(absent); i++)
    if (strstr(steps, absent[i]) != NULL)
      g_error("unexpected %s in:\n%s", absent[i], steps);
}

static void
test_kvm_guest_with_vsock_gpu_and_hugepages_gets_their_nodes(Fixture *f, gconstpointer data)
{
  f->spec.accel = "kvm";
  f->spec.vsock_cid = 1000;
  f->spec.hugepages = TRUE;
  f->spec.qemu_version = (LcvmQemuVersion){ 9, 2, 1, "9.2.1", TRUE };
  const LcvmQemuDevice gpu = { "0000:18:00.0", 0 };
  f->spec.gpus = &gpu;
  f->spec.n_gpus = 1;
  g_ptr_array_add(f->dev_nodes, g_build_filename(f->dev_root, "vfio", "12", NULL));
  g_autofree char *steps = view_steps(f);
  g_autofree char *container = g_strdup_printf(
      "bind-mount onto /newroot/dev/vfio/vfio from /oldroot%s/vfio/vfio\n", f->dev_root);
  g_autofree char *group = g_strdup_printf(
      "bind-mount onto /newroot/dev/vfio/12 from /oldroot%s/vfio/12\n", f->dev_root);
  const char *present[] = {
    container,
    group,
    "create the device node /newroot/dev/kvm\n",
    "create the device node /newroot/dev/vhost-vsock\n",
    "create the mount point /newroot/dev/vfio/12\n",
    "bind-mount onto /newroot/dev/hugepages from /oldroot/dev/hugepages\n",
  };
  assert_steps_include(steps, present, G_N_ELEMENTS(present));
}

static void
test_qemu_outside_usr_brings_its_installation(Fixture *f, gconstpointer data)
{
  f->spec.qemu_path = "/opt/qemu-dstack/bin/qemu-system-x86_64";
  g_autofree char *steps = view_steps(f);
  g_assert_nonnull(strstr(steps, "bind-mount onto /newroot/opt/qemu-dstack from "
                                 "/oldroot/opt/qemu-dstack\n"));
}

static void
test_kvm_that_is_no_device_is_refused(Fixture *f, gconstpointer data)
{
  g_autofree char *kvm = g_build_filename(f->dev_root, "kvm", NULL);
  g_autofree char *plain = g_build_filename(f->dev_root, "not-a-device", NULL);
  g_assert_cmpint(g_remove(kvm), ==, 0);
  g_assert_cmpint(rename(plain, kvm), ==, 0);
  f->spec.accel = "kvm";
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperSandbox) sb = helper_qemu_view(&f->config, &f->spec, 61000, f->dev_nodes, &error);
  g_assert_null(sb);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "as /dev/kvm: not a character or block device"));
}

static void
test_qemu_10_gets_no_vfio_node(Fixture *f, gconstpointer data)
{
  f->spec.accel = "kvm";
  f->spec.qemu_version = (LcvmQemuVersion){ 10, 0, 2, "10.0.2", FALSE };
  const LcvmQemuDevice gpu = { "0000:18:00.0", 0, LCVM_QEMU_FD_VFIO_FIRST };
  f->spec.gpus = &gpu;
  f->spec.n_gpus = 1;
  g_autofree char *steps = view_steps(f);
  g_assert_null(strstr(steps, "/dev/vfio"));
  g_assert_null(strstr(steps, "/dev/iommu"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD("/qemu-view/tcg-guest-sees-the-base-view-and-its-share",
      test_tcg_guest_sees_the_base_view_and_its_share);
  ADD("/qemu-view/kvm-guest-with-vsock-gpu-and-hugepages-gets-their-nodes",
      test_kvm_guest_with_vsock_gpu_and_hugepages_gets_their_nodes);
  ADD("/qemu-view/qemu-outside-usr-brings-its-installation",
      test_qemu_outside_usr_brings_its_installation);
  ADD("/qemu-view/kvm-that-is-no-device-is-refused", test_kvm_that_is_no_device_is_refused);
  ADD("/qemu-view/qemu-10-gets-no-vfio-node", test_qemu_10_gets_no_vfio_node);
  return g_test_run();
}
