/* SPDX-License-Identifier: MIT */
/* The state_dir/runtime_dir layout is what existing installs hold on disk: every name and
 * every path the layout module builds is pinned here byte for byte, and a name that could
 * leave its directory is refused wherever a path is built from it. */
#include "lcvm-error.h"
#include "lcvm-layout.h"
#include <gio/gio.h>

static LcvmConfig *
config_new(void)
{
  LcvmConfig *c = lcvm_config_new_default();
  g_free(c->state_dir);
  g_free(c->runtime_dir);
  c->state_dir = g_strdup("/var/lib/lium-cvm");
  c->runtime_dir = g_strdup("/run/lium-cvm");
  return c;
}

static void
test_names_are_the_installed_ones(void)
{
  /* state_dir */
  g_assert_cmpstr(LCVM_STATE_IMAGES, ==, "images");
  g_assert_cmpstr(LCVM_STATE_VMS, ==, "vms");
  g_assert_cmpstr(LCVM_STATE_INSTANCES, ==, "instances");
  g_assert_cmpstr(LCVM_GPU_MODES_FILE, ==, "gpu-modes.json");
  g_assert_cmpstr(LCVM_UID_CURSOR_FILE, ==, "uid-cursor");
  g_assert_cmpstr(LCVM_KEY_PROVIDER_PIN_FILE, ==, "key-provider.pin");
  g_assert_cmpstr(LCVM_KEY_PROVIDER_MRENCLAVE_FILE, ==, "key-provider.mrenclave");
  /* images/NAME */
  g_assert_cmpstr(LCVM_IMAGE_METADATA_FILE, ==, "metadata.json");
  g_assert_cmpstr(LCVM_IMAGE_SHA256SUM_FILE, ==, "sha256sum.txt");
  g_assert_cmpstr(LCVM_IMAGE_DIGEST_FILE, ==, "digest.txt");
  /* vms/NAME */
  g_assert_cmpstr(LCVM_MANIFEST_FILE, ==, "vm-manifest.json");
  g_assert_cmpstr(LCVM_APP_COMPOSE_FILE, ==, "app-compose.json");
  g_assert_cmpstr(LCVM_USER_CONFIG_FILE, ==, ".user-config");
  g_assert_cmpstr(LCVM_INIT_SCRIPT_FILE, ==, "init_script.sh");
  g_assert_cmpstr(LCVM_PRE_LAUNCH_SCRIPT_FILE, ==, "pre_launch_script.sh");
  /* instances/NAME and its shared/ */
  g_assert_cmpstr(LCVM_INSTANCE_DATA_DISK, ==, "hda.img");
  g_assert_cmpstr(LCVM_INSTANCE_SHARED_DIR, ==, "shared");
  g_assert_cmpstr(LCVM_INSTANCE_SERIAL_LOG, ==, "serial.log");
  g_assert_cmpstr(LCVM_INSTANCE_QEMU_LOG, ==, "qemu.log");
  g_assert_cmpstr(LCVM_INSTANCE_LAST_EXIT, ==, "last-exit");
  g_assert_cmpstr(LCVM_INSTANCE_MRENCLAVE_FILE, ==, "key-provider.mrenclave");
  g_assert_cmpstr(LCVM_SHARED_SYS_CONFIG, ==, ".sys-config.json");
  g_assert_cmpstr(LCVM_SHARED_ENCRYPTED_ENV, ==, ".encrypted-env");
  g_assert_cmpstr(LCVM_SHARED_INSTANCE_INFO, ==, ".instance_info");
  /* runtime_dir */
  g_assert_cmpstr(LCVM_RUNTIME_VFIO_DIR, ==, "vfio");
  g_assert_cmpstr(LCVM_RUNTIME_RECORD, ==, "record");
  g_assert_cmpstr(LCVM_RUNTIME_QMP, ==, "qmp.sock");
  g_assert_cmpstr(LCVM_RUNTIME_EVENTS, ==, "events");
}

static void
test_state_dir_paths(void)
{
  g_autoptr(LcvmConfig) c = config_new();
  g_autofree char *images = lcvm_layout_images_dir(c);
  g_autofree char *vms = lcvm_layout_vms_dir(c);
  g_autofree char *instances = lcvm_layout_instances_dir(c);
  g_autofree char *image = lcvm_layout_image_dir(c, "dstack-nvidia-0.5.11", NULL);
  g_autofree char *vm = lcvm_layout_vm_dir(c, "vm1", NULL);
  g_autofree char *instance = lcvm_layout_instance_dir(c, "vm1", NULL);
  g_autofree char *disk = lcvm_layout_instance_file(c, "vm1", LCVM_INSTANCE_DATA_DISK, NULL);
  g_autofree char *serial = lcvm_layout_instance_file(c, "vm1", LCVM_INSTANCE_SERIAL_LOG, NULL);
  g_assert_cmpstr(images, ==, "/var/lib/lium-cvm/images");
  g_assert_cmpstr(vms, ==, "/var/lib/lium-cvm/vms");
  g_assert_cmpstr(instances, ==, "/var/lib/lium-cvm/instances");
  g_assert_cmpstr(image, ==, "/var/lib/lium-cvm/images/dstack-nvidia-0.5.11");
  g_assert_cmpstr(vm, ==, "/var/lib/lium-cvm/vms/vm1");
  g_assert_cmpstr(instance, ==, "/var/lib/lium-cvm/instances/vm1");
  g_assert_cmpstr(disk, ==, "/var/lib/lium-cvm/instances/vm1/hda.img");
  g_assert_cmpstr(serial, ==, "/var/lib/lium-cvm/instances/vm1/serial.log");
}

static void
test_instance_paths_relative_to_state_dir(void)
{
  g_autofree char *dir = lcvm_layout_instance_rel("vm1", NULL, NULL);
  g_autofree char *shared = lcvm_layout_instance_rel("vm1", LCVM_INSTANCE_SHARED_DIR, NULL);
  g_assert_cmpstr(dir, ==, "instances/vm1");
  g_assert_cmpstr(shared, ==, "instances/vm1/shared");
}

static void
test_image_store_entries(void)
{
  g_autofree char *stamp = lcvm_layout_image_stamp("dstack-0.5.8");
  g_autofree char *lock = lcvm_layout_image_lock("dstack-0.5.8");
  g_assert_cmpstr(stamp, ==, ".dstack-0.5.8.verified");
  g_assert_cmpstr(lock, ==, ".dstack-0.5.8.lock");
}

static void
test_runtime_dir_paths(void)
{
  g_autoptr(LcvmConfig) c = config_new();
  g_autofree char *dir = lcvm_layout_runtime_dir(c, "vm1", NULL);
  g_autofree char *qmp = lcvm_layout_runtime_file(c, "vm1", LCVM_RUNTIME_QMP, NULL);
  g_autofree char *events = lcvm_layout_runtime_file(c, "vm1", LCVM_RUNTIME_EVENTS, NULL);
  g_autofree char *records = lcvm_layout_vfio_records_dir(c);
  g_autofree char *record = lcvm_layout_vfio_record(c, "0000:19:00.0", NULL);
  g_assert_cmpstr(dir, ==, "/run/lium-cvm/vm1");
  g_assert_cmpstr(qmp, ==, "/run/lium-cvm/vm1/qmp.sock");
  g_assert_cmpstr(events, ==, "/run/lium-cvm/vm1/events");
  g_assert_cmpstr(records, ==, "/run/lium-cvm/vfio");
  g_assert_cmpstr(record, ==, "/run/lium-cvm/vfio/0000:19:00.0");
}

/* Names that would leave the VM's directory, or are not VM names at all. */
static const char *const bad_vm_names[] = { "",     "..", ".", "../vm1", "vm1/..", "a/b",
                                            "/etc", "-a", "A", "vm 1",   "é",      NULL };

/* error is read after the call that set it (argument order is unspecified). */
static void
assert_refused(char *path, GError **error)
{
  g_assert_null(path);
  g_assert_error(*error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  g_clear_error(error);
}

static void
test_invalid_vm_name_refused_everywhere(void)
{
  g_autoptr(LcvmConfig) c = config_new();
  for (guint i = 0; bad_vm_names[i] != NULL; i++) {
    const char *name = bad_vm_names[i];
    g_test_message("VM name '%s'", name);
    GError *e = NULL;
    assert_refused(lcvm_layout_vm_dir(c, name, &e), &e);
    assert_refused(lcvm_layout_instance_dir(c, name, &e), &e);
    assert_refused(lcvm_layout_instance_file(c, name, LCVM_INSTANCE_DATA_DISK, &e), &e);
    assert_refused(lcvm_layout_instance_rel(name, LCVM_INSTANCE_SHARED_DIR, &e), &e);
    assert_refused(lcvm_layout_runtime_dir(c, name, &e), &e);
    assert_refused(lcvm_layout_runtime_file(c, name, LCVM_RUNTIME_QMP, &e), &e);
  }
  GError *e = NULL; /* NULL is no name either */
  assert_refused(lcvm_layout_instance_dir(c, NULL, &e), &e);
}

static void
test_invalid_image_name_refused(void)
{
  g_autoptr(LcvmConfig) c = config_new();
  const char *bad[] = { "", "..", ".hidden", "../vms", "a/b", "a..b", "img name", NULL };
  for (guint i = 0; bad[i] != NULL; i++) {
    g_autoptr(GError) error = NULL;
    g_test_message("image name '%s'", bad[i]);
    g_assert_null(lcvm_layout_image_dir(c, bad[i], &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
  }
}

static void
test_invalid_slot_refused(void)
{
  g_autoptr(LcvmConfig) c = config_new();
  const char *bad[] = { "", "19:00.0", "0000:3B:00.0", "../0000:19:00.0", "0000:19:00.0/x", NULL };
  for (guint i = 0; bad[i] != NULL; i++) {
    g_autoptr(GError) error = NULL;
    g_test_message("slot '%s'", bad[i]);
    g_assert_null(lcvm_layout_vfio_record(c, bad[i], &error));
    g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  }
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/layout/names_are_the_installed_ones", test_names_are_the_installed_ones);
  g_test_add_func("/layout/state_dir_paths", test_state_dir_paths);
  g_test_add_func("/layout/instance_paths_relative_to_state_dir",
                  test_instance_paths_relative_to_state_dir);
  g_test_add_func("/layout/image_store_entries", test_image_store_entries);
  g_test_add_func("/layout/runtime_dir_paths", test_runtime_dir_paths);
  g_test_add_func("/layout/invalid_vm_name_refused_everywhere",
                  test_invalid_vm_name_refused_everywhere);
  g_test_add_func("/layout/invalid_image_name_refused", test_invalid_image_name_refused);
  g_test_add_func("/layout/invalid_slot_refused", test_invalid_slot_refused);
  return g_test_run();
}
