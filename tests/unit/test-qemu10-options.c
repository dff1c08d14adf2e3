/* SPDX-License-Identifier: MIT */
/* The builder's iommufd options (QEMU >= 10, reference/field-2026.md §7.2) against a REAL
 * QEMU 10: every option name of its `-object iommufd,…` must be in `-object iommufd,help` and
 * every one of its `-device vfio-pci,…` in `-device vfio-pci,help`; and QEMU must start
 * (machine none, -S) with the builder's iommufd object and a passed fd. A vfio-pci device
 * itself needs a real vfio cdev, so it is checked by name only. Runs LCVM_QEMU or
 * /usr/bin/qemu-system-x86_64; skipped, with the reason, when that is missing or older than
 * 10 (Debian 13 and Ubuntu 25.10 ship QEMU 10). */
#include "lcvm-qemu-argv.h"

#include <fcntl.h>
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

static const LcvmQemuForward no_forward[1];

static const char *
qemu_path(void)
{
  const char *env = g_getenv("LCVM_QEMU");
  return env && env[0] ? env : "/usr/bin/qemu-system-x86_64";
}

/* Whether the QEMU to test is >= 10 (otherwise the test is skipped, with the reason). */
static gboolean
qemu_10(LcvmQemuVersion *version)
{
  const char *qemu = qemu_path();
  g_autofree char *out = NULL;
  const char *argv[] = { qemu, "--version", NULL };
  if (!g_file_test(qemu, G_FILE_TEST_IS_EXECUTABLE) ||
      !g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out, NULL,
                    NULL, NULL) ||
      !lcvm_qemu_version_parse(out, version, NULL)) {
    g_autofree char *why =
        g_strdup_printf("%s is missing or says no version (set LCVM_QEMU)", qemu);
    g_test_skip(why);
    return FALSE;
  }
  if (!lcvm_qemu_version_at_least(version, 10, 0, 0)) {
    g_autofree char *why = g_strdup_printf(
        "%s is QEMU %s; these checks need QEMU >= 10 (Debian 13)", qemu, version->text);
    g_test_skip(why);
    return FALSE;
  }
  return TRUE;
}

/* The builder's argv for one GPU and one NVSwitch with the helper's fds. */
static GStrv
builder_argv(const LcvmQemuVersion *version)
{
  static const LcvmQemuDevice gpu[] = { { "0000:19:00.0", 0, LCVM_QEMU_FD_VFIO_FIRST } };
  static const LcvmQemuDevice sw[] = { { "0000:05:00.0", 0, LCVM_QEMU_FD_VFIO_FIRST + 1 } };
  LcvmQemuSpec spec = {
    .qemu_path = qemu_path(),
    .qemu_version = *version,
    .accel = "tcg",
    .vcpus = 1,
    .memory_mib = 512,
    .kernel = "/i/bzImage",
    .initrd = "/i/initrd",
    .bios = "/i/ovmf.fd",
    .kernel_fd = -1, /* paths, not fds */
    .initrd_fd = -1,
    .bios_fd = -1,
    .rootfs = "/i/rootfs.img.verity",
    .rootfs_fd = LCVM_QEMU_FD_ROOTFS,
    .cmdline = "console=ttyS0",
    .shared_dir = "/s/shared",
    .data_disk = "/s/hda.img",
    .data_disk_fd = LCVM_QEMU_FD_DATA_DISK,
    .data_disk_ro_fd = LCVM_QEMU_FD_DATA_DISK_RO,
    .qmp_fd = LCVM_QEMU_FD_QMP,
    .serial_fd = LCVM_QEMU_FD_SERIAL,
    .forwards = no_forward,
    .iommufd_fd = LCVM_QEMU_FD_IOMMUFD,
    .gpus = gpu,
    .n_gpus = 1,
    .nvswitches = sw,
    .n_nvswitches = 1,
  };
  g_autoptr(GError) error = NULL;
  GStrv argv = lcvm_qemu_argv_build(&spec, &error);
  g_assert_no_error(error);
  return argv;
}

/* The values of `option` in argv whose first element is `type`. */
static GPtrArray *
values_of(GStrv argv, const char *option, const char *type)
{
  GPtrArray *out = g_ptr_array_new();
  g_autofree char *prefix = g_strconcat(type, ",", NULL);
  for (guint i = 0; argv[i] && argv[i + 1]; i++)
    if (g_str_equal(argv[i], option) && g_str_has_prefix(argv[i + 1], prefix))
      g_ptr_array_add(out, argv[i + 1]);
  return out;
}

static char *
help_of(const char *option, const char *type)
{
  g_autofree char *what = g_strconcat(type, ",help", NULL);
  const char *argv[] = { qemu_path(), option, what, NULL };
  char *out = NULL, *err = NULL;
  int status = 0;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err,
                             &status, NULL));
  g_autofree char *both = g_strconcat(out, err, NULL);
  g_free(out);
  g_free(err);
  return g_steal_pointer(&both);
}

/* Every key=value of value (after its type) names a property the help lists; `id` and a
 * device's `bus` are QEMU's generic options, which the help does not list. */
static void
assert_keys_known(const char *value, const char *help, const char *type)
{
  g_auto(GStrv) parts = g_strsplit(value, ",", -1);
  for (guint i = 1; parts[i]; i++) {
    g_autofree char *key = g_strndup(parts[i], strcspn(parts[i], "="));
    if (g_str_equal(key, "id") || g_str_equal(key, "bus"))
      continue;
    g_autofree char *listed = g_strdup_printf("  %s=", key);
    if (strstr(help, listed) == NULL)
      g_error("QEMU's '%s,help' lists no property '%s' (from '%s'):\n%s", type, key, value, help);
  }
}

static void
test_option_names_are_qemu_10s(void)
{
  LcvmQemuVersion version = { 0 };
  if (!qemu_10(&version))
    return;
  g_auto(GStrv) argv = builder_argv(&version);
  g_autoptr(GPtrArray) objects = values_of(argv, "-object", "iommufd");
  g_autoptr(GPtrArray) devices = values_of(argv, "-device", "vfio-pci");
  g_assert_cmpuint(objects->len, ==, 1);
  g_assert_cmpuint(devices->len, ==, 2);
  g_autofree char *object_help = help_of("-object", "iommufd");
  g_autofree char *device_help = help_of("-device", "vfio-pci");
  assert_keys_known(objects->pdata[0], object_help, "iommufd");
  for (guint i = 0; i < devices->len; i++)
    assert_keys_known(devices->pdata[i], device_help, "vfio-pci");
}

/* QEMU parses the builder's iommufd object with a passed fd and starts (-S: nothing runs);
 * it only opens the fd's device when a vfio-pci device attaches, so /dev/null stands in for
 * /dev/iommu. QMP on stdio makes it quit again. */
static void
test_qemu_10_starts_with_the_iommufd_object_and_a_passed_fd(void)
{
  LcvmQemuVersion version = { 0 };
  if (!qemu_10(&version))
    return;
  g_auto(GStrv) argv = builder_argv(&version);
  g_autoptr(GPtrArray) objects = values_of(argv, "-object", "iommufd");
  g_autoptr(GSubprocessLauncher) l =
      g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                G_SUBPROCESS_FLAGS_STDERR_MERGE);
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  g_assert_cmpint(fd, >=, 0);
  g_subprocess_launcher_take_fd(l, fd, LCVM_QEMU_FD_IOMMUFD);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) p = g_subprocess_launcher_spawn(
      l, &error, qemu_path(), "-machine", "none", "-S", "-nodefaults", "-display", "none",
      "-object", (const char *)objects->pdata[0], "-qmp", "stdio", NULL);
  g_assert_no_error(error);
  g_autofree char *out = NULL;
  g_assert_true(g_subprocess_communicate_utf8(
      p, "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"quit\"}\n", NULL, &out, NULL, &error));
  g_assert_no_error(error);
  if (!g_subprocess_get_successful(p))
    g_error("QEMU refused '-object %s': %s", (const char *)objects->pdata[0], out);
  g_assert_nonnull(strstr(out, "\"return\""));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/qemu10-options/option-names-are-qemu-10s", test_option_names_are_qemu_10s);
  g_test_add_func("/qemu10-options/qemu-10-starts-with-the-iommufd-object-and-a-passed-fd",
                  test_qemu_10_starts_with_the_iommufd_object_and_a_passed_fd);
  return g_test_run();
}
