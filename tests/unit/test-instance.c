/* SPDX-License-Identifier: MIT */
/* helper_instance_prepare as root against a temporary state dir: the instance directory a start
 * assembles (shared/ copies, .sys-config.json, the data disk made by the real qemu-img confined
 * as the VM's uid) and what it refuses without leaving anything behind; and the VM launch
 * (helper_vm_launch) called without a bus, up to where it would touch nftables: its device
 * locks first, and everything given back when it fails. Needs root, qemu-img and
 * qemu-system-x86_64 (the version probe); skips without them. */
#include "helper-instance.h"
#include "helper-vm-launch.h"
#include "lcvm-compose.h"
#include "lcvm-error.h"

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QEMU     "/usr/bin/qemu-system-x86_64"
#define QEMU_IMG "/usr/bin/qemu-img"
#define VM       "vm1"
#define IMAGE    "dstack-nvidia-0.5.11"
#define DIGEST   "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592"
#define VM_UID   61990
#define VM_UID_2 61991
#define API_PORT 40001
#define DISK     (G_GUINT64_CONSTANT(2) << 30)

static const char compose[] = "{\n    \"manifest_version\": 1,\n    \"name\": \"example\",\n"
                              "    \"runner\": \"docker-compose\"\n}";
static const char user_config[] = "{\"env_vars\": {\"SSH_PUBLIC_KEY\": \"ssh-ed25519 AAAA\"}}";
static const char encrypted_env[] = "\x01\x02\x03 not text \xff";

typedef struct {
  char *root;
  char *vm_dir;
  char *instance;
  LcvmConfig *config;
} Fixture;

static void
put(const char *dir, const char *name, const char *data, gssize len, mode_t mode)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  g_autoptr(GError) error = NULL;
  g_assert_true(
      g_file_set_contents_full(path, data, len, G_FILE_SET_CONTENTS_CONSISTENT, mode, &error));
  g_assert_no_error(error);
}

static char *
slurp(const char *dir, const char *name, gsize *len)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  char *data = NULL;
  g_autoptr(GError) error = NULL;
  g_assert_true(g_file_get_contents(path, &data, len, &error));
  return data;
}

static void
write_image(const char *root)
{
  g_autofree char *dir = g_build_filename(root, "images", IMAGE, NULL);
  g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
  put(dir, "metadata.json",
      "{\"bios\": \"ovmf.fd\", \"kernel\": \"bzImage\", \"initrd\": \"initramfs.cpio.gz\", "
      "\"rootfs\": \"rootfs.img.verity\", \"cmdline\": \"console=ttyS0\", \"version\": "
      "\"0.5.11\", \"shared_ro\": true, \"ovmf_variant\": \"Stable202411\"}",
      -1, 0644);
  put(dir, "digest.txt", DIGEST "\n", -1, 0644);
  for (const char *const *f = (const char *const[]){ "ovmf.fd", "bzImage", "initramfs.cpio.gz",
                                                     "rootfs.img.verity", NULL };
       *f; f++)
    put(dir, *f, "\0\0\0\0", 4, 0644);
}

static void
write_definition(Fixture *fx)
{
  g_autofree char *hash = lcvm_compose_hash(compose, strlen(compose));
  g_autofree char *manifest = g_strdup_printf(
      "{\"manifest_version\": 1, \"name\": \"" VM "\", \"image\": \"" IMAGE "\", \"vcpus\": 1, "
      "\"memory\": %" G_GUINT64_FORMAT ", \"disk\": %" G_GUINT64_FORMAT ", \"gpu_attach\": "
      "\"listed\", \"gpus\": [], \"nvswitches\": [], \"ports\": [], \"hugepages\": false, "
      "\"pin_numa\": false, \"compose_hash\": \"%s\", \"os_image_hash\": \"" DIGEST "\", "
      "\"created_at_ms\": 1764230037000}",
      G_GUINT64_CONSTANT(512) << 20, DISK, hash);
  g_assert_cmpint(g_mkdir_with_parents(fx->vm_dir, 02770), ==, 0);
  put(fx->vm_dir, "vm-manifest.json", manifest, -1, 0640);
  put(fx->vm_dir, "app-compose.json", compose, -1, 0640);
  put(fx->vm_dir, ".user-config", user_config, -1, 0640);
  put(fx->vm_dir, ".encrypted-env", encrypted_env, sizeof encrypted_env - 1, 0640);
  put(fx->vm_dir, "init_script.sh", "echo init\n", -1, 0640);
}

/* The CPUs and memory the validation reads from sysfs_root: 4 CPUs, 8 GiB. */
static void
write_host_facts(const char *root)
{
  g_autofree char *cpu = g_build_filename(root, "sys/devices/system/cpu", NULL);
  g_autofree char *node = g_build_filename(root, "sys/devices/system/node", NULL);
  g_autofree char *node0 = g_build_filename(node, "node0", NULL);
  g_assert_cmpint(g_mkdir_with_parents(cpu, 0755), ==, 0);
  g_assert_cmpint(g_mkdir_with_parents(node0, 0755), ==, 0);
  put(cpu, "online", "0-3\n", -1, 0644);
  put(node, "online", "0\n", -1, 0644);
  put(node0, "meminfo", "Node 0 MemTotal:        8388608 kB\n", -1, 0644);
}

static LcvmConfig *
make_config(const char *root, const char *qemu_img)
{
  g_autofree char *text = g_strdup_printf(
      "[paths]\nstate_dir=%s/state\nruntime_dir=%s/run\nsysfs_root=%s/sys\ndev_root=%s/dev\n"
      "proc_root=%s/proc\ndstack_client_conf=\n"
      "[qemu]\npath=" QEMU "\nallow_no_tee=true\naccel=tcg\n"
      "[tools]\nqemu_img=%s\n",
      root, root, root, root, root, qemu_img);
  g_autoptr(GError) error = NULL;
  LcvmConfig *config = lcvm_config_load_data(text, &error);
  g_assert_no_error(error);
  return config;
}

static void
setup(Fixture *fx, gconstpointer data)
{
  if (getuid() != 0 || !g_file_test(QEMU_IMG, G_FILE_TEST_IS_EXECUTABLE) ||
      !g_file_test(QEMU, G_FILE_TEST_IS_EXECUTABLE))
    return;
  g_autoptr(GError) error = NULL;
  fx->root = g_dir_make_tmp("lcvm-instance-XXXXXX", &error);
  g_assert_no_error(error);
  g_autofree char *state = g_build_filename(fx->root, "state", NULL);
  fx->vm_dir = g_build_filename(state, "vms", VM, NULL);
  fx->instance = g_build_filename(state, "instances", VM, NULL);
  write_image(state);
  write_definition(fx);
  write_host_facts(fx->root);
  fx->config = make_config(fx->root, QEMU_IMG);
}

static void
teardown(Fixture *fx, gconstpointer data)
{
  if (fx->root != NULL) {
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", fx->root);
    g_assert_cmpint(system(cmd), ==, 0);
  }
  g_free(fx->root);
  g_free(fx->vm_dir);
  g_free(fx->instance);
  g_clear_pointer(&fx->config, lcvm_config_free);
}

static gboolean
skipped(const Fixture *fx)
{
  if (fx->root == NULL)
    g_test_skip("needs root, " QEMU_IMG " and " QEMU " (apt-get install qemu-utils "
                "qemu-system-x86)");
  return fx->root == NULL;
}

/* validate + spec + prepare, as StartVm will call them. */
static gboolean
prepare(Fixture *fx, uid_t uid, GError **error)
{
  g_autoptr(HelperDefinition) def = helper_instance_validate(fx->config, VM, error);
  if (def == NULL)
    return FALSE;
  g_autoptr(LcvmQemuSpec) spec = helper_instance_spec(fx->config, def, 1000, error);
  return spec != NULL && helper_instance_prepare(fx->config, def, spec, uid, API_PORT, error);
}

static void
assert_owned(const char *dir, const char *name, uid_t uid, mode_t mode)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  struct stat st;
  g_assert_cmpint(lstat(path, &st), ==, 0);
  g_assert_cmpuint(st.st_uid, ==, uid);
  g_assert_cmpuint(st.st_gid, ==, uid);
  g_assert_cmpuint(st.st_mode & 07777, ==, mode);
}

static void
assert_absent(const char *path)
{
  struct stat st;
  g_assert_cmpint(lstat(path, &st), ==, -1);
  g_assert_cmpint(errno, ==, ENOENT);
}

static void
assert_same_file(const char *dir_a, const char *dir_b, const char *name)
{
  gsize len_a = 0, len_b = 0;
  g_autofree char *a = slurp(dir_a, name, &len_a);
  g_autofree char *b = slurp(dir_b, name, &len_b);
  g_assert_cmpmem(a, len_a, b, len_b);
}

static ino_t
inode_of(const char *dir, const char *name)
{
  g_autofree char *path = g_build_filename(dir, name, NULL);
  struct stat st;
  g_assert_cmpint(lstat(path, &st), ==, 0);
  return st.st_ino;
}

static void
test_shared_holds_byte_equal_copies_never_links(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(prepare(fx, VM_UID, &error));
  g_assert_no_error(error);
  g_autofree char *shared = g_build_filename(fx->instance, "shared", NULL);
  for (const char *const *f =
           (const char *const[]){ "app-compose.json", ".user-config", ".encrypted-env", NULL };
       *f; f++) {
    assert_same_file(fx->vm_dir, shared, *f);
    g_assert_cmpuint(inode_of(fx->vm_dir, *f), !=, inode_of(shared, *f));
    assert_owned(shared, *f, VM_UID, 0600);
  }
  /* The scripts reach the guest inside app-compose.json, as the reference launcher passes them. */
  g_autofree char *script = g_build_filename(shared, "init_script.sh", NULL);
  assert_absent(script);
  assert_owned(fx->instance, "shared", VM_UID, 0700);
  assert_owned(fx->instance, "", 0, 0711);
}

/* The version QEMU itself reports ("QEMU emulator version 7.2.22 (Debian …)" → "7.2.22"):
 * Debian 12 has 7.2, Debian 13 has 10.0. */
static char *
installed_qemu_version(void)
{
  g_autofree char *out = NULL;
  g_assert_true(g_spawn_command_line_sync(QEMU " --version", &out, NULL, NULL, NULL));
  const char *v = strstr(out, "version ");
  g_assert_nonnull(v);
  v += strlen("version ");
  return g_strndup(v, strcspn(v, " \n"));
}

static void
test_sys_config_names_the_host_api_and_the_vm_config(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(prepare(fx, VM_UID, &error));
  g_autofree char *shared = g_build_filename(fx->instance, "shared", NULL);
  gsize len = 0;
  g_autofree char *text = slurp(shared, ".sys-config.json", &len);
  g_autoptr(JsonParser) parser = json_parser_new();
  g_assert_true(json_parser_load_from_data(parser, text, (gssize)len, &error));
  JsonObject *o = json_node_get_object(json_parser_get_root(parser));
  g_assert_cmpstr(json_object_get_string_member(o, "host_api_url"), ==,
                  "http://10.0.2.2:40001/api");
  g_assert_cmpint(json_object_get_int_member(o, "host_vsock_port"), ==, API_PORT);
  g_autoptr(JsonParser) inner = json_parser_new();
  g_assert_true(
      json_parser_load_from_data(inner, json_object_get_string_member(o, "vm_config"), -1, &error));
  JsonObject *vm = json_node_get_object(json_parser_get_root(inner));
  g_assert_cmpint(json_object_get_int_member(vm, "spec_version"), ==, 1);
  g_assert_cmpstr(json_object_get_string_member(vm, "os_image_hash"), ==, DIGEST);
  g_assert_cmpint(json_object_get_int_member(vm, "cpu_count"), ==, 1);
  g_assert_cmpint(json_object_get_int_member(vm, "memory_size"), ==, 512 << 20);
  g_assert_cmpint(json_object_get_int_member(vm, "num_gpus"), ==, 0);
  g_assert_false(json_object_get_boolean_member(vm, "hugepages"));
  g_assert_cmpstr(json_object_get_string_member(vm, "image"), ==, IMAGE);
  g_assert_cmpstr(json_object_get_string_member(vm, "ovmf_variant"), ==, "Stable202411");
  g_autofree char *qemu_version = installed_qemu_version();
  g_assert_cmpstr(json_object_get_string_member(vm, "qemu_version"), ==, qemu_version);
  assert_owned(shared, ".sys-config.json", VM_UID, 0600);
}

/* dstack's client.conf [docker] registry reaches .sys-config.json first, as Lium's dstack.py
 * writes it; an operator-writable client.conf is refused, nothing assembled. */
static void
use_client_conf(Fixture *fx, const char *text, mode_t mode)
{
  put(fx->root, "client.conf", text, -1, mode);
  g_free(fx->config->dstack_client_conf);
  fx->config->dstack_client_conf = g_build_filename(fx->root, "client.conf", NULL);
  g_assert_cmpint(chmod(fx->config->dstack_client_conf, mode), ==, 0); /* past the umask */
}

static void
test_docker_registry_from_client_conf_reaches_sys_config(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  use_client_conf(fx, "[docker]\nregistry = registry.example:5000\n", 0644);
  g_autoptr(GError) error = NULL;
  g_assert_true(prepare(fx, VM_UID, &error));
  g_assert_no_error(error);
  g_autofree char *shared = g_build_filename(fx->instance, "shared", NULL);
  gsize len = 0;
  g_autofree char *text = slurp(shared, ".sys-config.json", &len);
  g_assert_true(g_str_has_prefix(text, "{\n    \"docker_registry\": \"registry.example:5000\",\n"
                                       "    \"host_api_url\": "));
}

static void
test_untrusted_client_conf_is_refused(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  use_client_conf(fx, "[docker]\nregistry = evil.example\n", 0666);
  g_autoptr(GError) error = NULL;
  g_assert_false(prepare(fx, VM_UID, &error));
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, "client.conf"));
  assert_absent(fx->instance);
}

/* The qcow2 header: magic "QFI\xfb", virtual size as a big-endian u64 at offset 24. */
static void
assert_qcow2_of_size(const char *dir, guint64 size)
{
  gsize len = 0;
  g_autofree char *disk = slurp(dir, "hda.img", &len);
  g_assert_cmpuint(len, >=, 32);
  g_assert_cmpmem(disk, 4, "QFI\xfb", 4);
  guint64 be;
  memcpy(&be, disk + 24, sizeof be);
  g_assert_cmpuint(GUINT64_FROM_BE(be), ==, size);
}

static void
test_data_disk_is_made_once_as_the_vm_uid(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(prepare(fx, VM_UID, &error));
  assert_qcow2_of_size(fx->instance, DISK);
  assert_owned(fx->instance, "hda.img", VM_UID, 0600);
  ino_t disk = inode_of(fx->instance, "hda.img");
  g_autofree char *shared = g_build_filename(fx->instance, "shared", NULL);
  ino_t first_shared = inode_of(fx->instance, "shared");
  put(shared, ".instance_info", "{\"instance_id\": \"ab\"}", -1, 0600);

  /* The next start keeps the disk (the guest's data), hands it to the uid of this start,
   * refreshes shared/ and keeps the instance id the guest reported. */
  g_assert_true(prepare(fx, VM_UID_2, &error));
  g_assert_no_error(error);
  g_assert_cmpuint(inode_of(fx->instance, "hda.img"), ==, disk);
  assert_owned(fx->instance, "hda.img", VM_UID_2, 0600);
  g_assert_cmpuint(inode_of(fx->instance, "shared"), !=, first_shared);
  assert_owned(fx->instance, "shared", VM_UID_2, 0700);
  gsize len = 0;
  g_autofree char *info = slurp(shared, ".instance_info", &len);
  g_assert_cmpstr(info, ==, "{\"instance_id\": \"ab\"}");
  g_auto(GStrv) entries = NULL;
  g_autoptr(GDir) dir = g_dir_open(fx->instance, 0, NULL);
  g_autoptr(GStrvBuilder) names = g_strv_builder_new();
  for (const char *n = g_dir_read_name(dir); n; n = g_dir_read_name(dir))
    g_strv_builder_add(names, n);
  entries = g_strv_builder_end(names);
  g_assert_cmpuint(g_strv_length(entries), ==, 2); /* hda.img and shared: no leftovers */
}

static void
assert_refused_without_trace(Fixture *fx, GError *error, const char *fragment)
{
  g_assert_nonnull(error);
  if (strstr(error->message, fragment) == NULL)
    g_error("'%s' is not in: %s", fragment, error->message);
  assert_absent(fx->instance);
}

static void
test_symlinked_definition_file_is_refused_leaving_nothing(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(HelperDefinition) def = helper_instance_validate(fx->config, VM, NULL);
  g_autoptr(LcvmQemuSpec) spec = helper_instance_spec(fx->config, def, 1000, NULL);
  g_assert_nonnull(spec);
  /* Swapped in between validation and assembly: the copy must not follow it. */
  g_autofree char *link = g_build_filename(fx->vm_dir, ".user-config", NULL);
  g_assert_cmpint(unlink(link), ==, 0);
  g_assert_cmpint(symlink("/etc/shadow", link), ==, 0);
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_instance_prepare(fx->config, def, spec, VM_UID, API_PORT, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  assert_refused_without_trace(fx, error, ".user-config");
}

static void
test_hard_linked_definition_file_is_refused_leaving_nothing(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  /* With fs.protected_hardlinks=0 an operator can link a file only root may read into the
   * definition; the copy would hand its bytes to the VM's uid and the guest. */
  g_autofree char *secret = g_build_filename(fx->root, "root-only", NULL);
  put(fx->root, "root-only", "root's secret", -1, 0600);
  g_autofree char *copied = g_build_filename(fx->vm_dir, ".user-config", NULL);
  g_assert_cmpint(unlink(copied), ==, 0);
  g_assert_cmpint(link(secret, copied), ==, 0);
  g_autoptr(GError) error = NULL;
  g_assert_false(prepare(fx, VM_UID, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  assert_refused_without_trace(fx, error, "hard link");
}

static void
test_hard_linked_instance_info_is_not_carried_over(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(prepare(fx, VM_UID, &error));
  /* The old shared/ is the VM uid's: what it holds is read like untrusted input. */
  g_autofree char *shared = g_build_filename(fx->instance, "shared", NULL);
  g_autofree char *info = g_build_filename(shared, ".instance_info", NULL);
  g_autofree char *secret = g_build_filename(fx->root, "root-only", NULL);
  put(fx->root, "root-only", "root's secret", -1, 0600);
  g_assert_cmpint(link(secret, info), ==, 0);
  g_assert_true(prepare(fx, VM_UID_2, &error));
  g_assert_no_error(error);
  assert_absent(info);
}

static void
test_tampered_compose_is_refused_naming_both_hashes(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(HelperDefinition) def = helper_instance_validate(fx->config, VM, NULL);
  g_autoptr(LcvmQemuSpec) spec = helper_instance_spec(fx->config, def, 1000, NULL);
  g_assert_nonnull(spec);
  static const char tampered[] = "{\"name\": \"exampl3\"}";
  put(fx->vm_dir, "app-compose.json", tampered, -1, 0640);
  g_autoptr(GError) error = NULL;
  g_assert_false(helper_instance_prepare(fx->config, def, spec, VM_UID, API_PORT, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_autofree char *recorded = lcvm_compose_hash(compose, strlen(compose));
  g_autofree char *found = lcvm_compose_hash(tampered, strlen(tampered));
  assert_refused_without_trace(fx, error, recorded);
  assert_refused_without_trace(fx, error, found);
}

static void
test_failure_after_shared_is_built_removes_the_new_instance(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  /* qemu-img in a directory an operator could write: refused only when the disk is made,
   * after shared/ was already assembled. */
  g_autofree char *bin = g_build_filename(fx->root, "opbin", NULL);
  g_assert_cmpint(g_mkdir_with_parents(bin, 0755), ==, 0);
  g_assert_cmpint(chown(bin, VM_UID, VM_UID), ==, 0);
  g_autofree char *qemu_img = g_build_filename(bin, "qemu-img", NULL);
  put(bin, "qemu-img", "#!/bin/sh\n", -1, 0755);
  lcvm_config_free(fx->config);
  fx->config = make_config(fx->root, qemu_img);
  g_autoptr(GError) error = NULL;
  g_assert_false(prepare(fx, VM_UID, &error));
  assert_refused_without_trace(fx, error, "not root");
}

static void
test_failing_qemu_img_leaves_no_disk_and_no_instance(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  lcvm_config_free(fx->config);
  fx->config = make_config(fx->root, "/bin/false");
  g_autoptr(GError) error = NULL;
  g_assert_false(prepare(fx, VM_UID, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  assert_refused_without_trace(fx, error,
                               "create -f qcow2` of the data disk failed (exit status 1)");
}

static void
test_existing_instance_keeps_its_shared_when_a_start_fails(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_true(prepare(fx, VM_UID, &error));
  ino_t shared = inode_of(fx->instance, "shared");
  g_autoptr(HelperDefinition) def = helper_instance_validate(fx->config, VM, NULL);
  g_autoptr(LcvmQemuSpec) spec = helper_instance_spec(fx->config, def, 1000, NULL);
  g_assert_nonnull(spec);
  put(fx->vm_dir, "app-compose.json", "{}", -1, 0640);
  g_assert_false(helper_instance_prepare(fx->config, def, spec, VM_UID, API_PORT, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_cmpuint(inode_of(fx->instance, "shared"), ==, shared);
  assert_qcow2_of_size(fx->instance, DISK);
  g_autofree char *dir = g_build_filename(fx->instance, "shared", NULL);
  gsize len = 0;
  g_autofree char *kept = slurp(dir, "app-compose.json", &len);
  g_assert_cmpstr(kept, ==, compose);
}

static void
test_symlinked_instance_dir_is_refused(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autofree char *parent = g_path_get_dirname(fx->instance);
  g_assert_cmpint(g_mkdir_with_parents(parent, 0711), ==, 0);
  g_autofree char *elsewhere = g_build_filename(fx->root, "elsewhere", NULL);
  g_assert_cmpint(g_mkdir_with_parents(elsewhere, 0700), ==, 0);
  g_assert_cmpint(symlink(elsewhere, fx->instance), ==, 0);
  g_autoptr(GError) error = NULL;
  g_assert_false(prepare(fx, VM_UID, &error));
  g_assert_nonnull(strstr(error->message, "never a symlink"));
  g_autoptr(GDir) dir = g_dir_open(elsewhere, 0, NULL);
  g_assert_null(g_dir_read_name(dir));
}

static void
test_deeply_nested_image_metadata_is_refused(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  /* Operators write the image store; the helper parses its metadata.json as root. */
  g_autofree char *image = g_build_filename(fx->root, "state", "images", IMAGE, NULL);
  g_autofree char *nested = g_strnfill(512 * 1024, '[');
  put(image, "metadata.json", nested, -1, 0644);
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperDefinition) def = helper_instance_validate(fx->config, VM, &error);
  g_assert_null(def);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_FAILED);
  g_assert_nonnull(strstr(error->message, "nested deeper than"));
}

static void
assert_artefact_refused(const HelperDefinition *def, const char *fragment)
{
  g_autoptr(GError) error = NULL;
  g_assert_cmpint(lcvm_image_open_artefact(def->image, "rootfs", &error), ==, -1);
  g_assert_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  if (strstr(error->message, fragment) == NULL)
    g_error("'%s' is not in: %s", fragment, error->message);
}

static void
test_rootfs_is_opened_only_below_the_image_dir(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(HelperDefinition) def = helper_instance_validate(fx->config, VM, &error);
  g_assert_no_error(error);
  int fd = lcvm_image_open_artefact(def->image, "rootfs", &error);
  g_assert_no_error(error);
  struct stat st;
  g_assert_cmpint(fstat(fd, &st), ==, 0);
  g_assert_true(S_ISREG(st.st_mode));
  g_assert_cmpint(fcntl(fd, F_GETFL) & O_NONBLOCK, ==, 0);
  close(fd);

  /* Operators write the store: after validation they swap the image for a symlink to a
   * directory of root's, holding a file of the rootfs's name. */
  g_autofree char *image = g_build_filename(fx->root, "state", "images", IMAGE, NULL);
  g_autofree char *moved = g_strconcat(image, ".moved", NULL);
  g_autofree char *roots = g_build_filename(fx->root, "roots", NULL);
  g_assert_cmpint(g_mkdir_with_parents(roots, 0700), ==, 0);
  put(roots, "rootfs.img.verity", "root's disk", -1, 0600);
  g_assert_cmpint(rename(image, moved), ==, 0);
  g_assert_cmpint(symlink(roots, image), ==, 0);
  assert_artefact_refused(def, "cannot open directory");

  /* ... or a directory on the way to the rootfs, or a FIFO that would block the open. */
  g_assert_cmpint(unlink(image), ==, 0);
  g_assert_cmpint(rename(moved, image), ==, 0);
  g_free(def->image->rootfs);
  def->image->rootfs = g_strdup("sub/rootfs.img.verity");
  g_autofree char *sub = g_build_filename(image, "sub", NULL);
  g_assert_cmpint(symlink(roots, sub), ==, 0);
  assert_artefact_refused(def, "sub/rootfs.img.verity");
  g_free(def->image->rootfs);
  def->image->rootfs = g_strdup("rootfs.img.verity");
  g_autofree char *rootfs = g_build_filename(image, "rootfs.img.verity", NULL);
  g_assert_cmpint(unlink(rootfs), ==, 0);
  g_assert_cmpint(mkfifo(rootfs, 0644), ==, 0);
  assert_artefact_refused(def, "not a regular file");
}

static void
test_root_is_never_the_vm_uid(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(GError) error = NULL;
  g_assert_false(prepare(fx, 0, &error));
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT);
  assert_absent(fx->instance);
}

/* ---- the launch, as StartVm calls it but without a bus (helper_vm_launch) ---- */

static gboolean
take_locks(gpointer data, const char *const *slots, GError **error)
{
  (*(guint *)data)++;
  return TRUE;
}

static gboolean
refuse_locks(gpointer data, const char *const *slots, GError **error)
{
  (*(guint *)data)++;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_BUSY, "the devices are held by another operation");
  return FALSE;
}

/* A launch expected to fail: it hands out no pidfd. */
static void
launch_fails(Fixture *fx, HelperAlloc *alloc, const char *name, HelperDeviceLocker lock,
             guint *lock_calls, GError **error)
{
  int pidfd = 7, bridge_pidfd = 7;
  g_autoptr(HelperRecord) r = helper_vm_launch(fx->config, alloc, name, lock, lock_calls, &pidfd,
                                               &bridge_pidfd, NULL, error);
  g_assert_null(r);
  g_assert_cmpint(pidfd, ==, -1);
  g_assert_cmpint(bridge_pidfd, ==, -1);
}

static char *
cid_holder(Fixture *fx, HelperAlloc *alloc)
{
  g_autofree char *key =
      g_strdup_printf("cid:%" G_GINT64_FORMAT, (gint64)fx->config->cid_range.min);
  return helper_alloc_holder(alloc, key);
}

static void
test_launch_of_an_undefined_vm_takes_no_lock(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(fx->config, NULL);
  g_autoptr(GError) error = NULL;
  guint calls = 0;
  launch_fails(fx, alloc, "vm2", take_locks, &calls, &error);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND);
  g_assert_nonnull(strstr(error->message, "VM vm2 is not defined"));
  g_assert_cmpuint(calls, ==, 0);
}

static void
test_launch_stops_at_a_held_device_lock_leaving_nothing(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(fx->config, NULL);
  g_autoptr(GError) error = NULL;
  guint calls = 0;
  launch_fails(fx, alloc, VM, refuse_locks, &calls, &error);
  g_assert_error(error, LCVM_ERROR, LCVM_ERROR_BUSY);
  g_assert_cmpuint(calls, ==, 1);
  g_autofree char *holder = cid_holder(fx, alloc);
  g_assert_null(holder);
  assert_absent(fx->instance);
}

/* The runtime dir cannot be made, after the instance was assembled as the VM's uid: the launch
 * gives back its reservation and hands the instance back to root. */
static void
test_launch_failing_after_prepare_gives_everything_back(Fixture *fx, gconstpointer data)
{
  if (skipped(fx))
    return;
  put(fx->root, "run", "not a directory", -1, 0644);
  g_autoptr(HelperAlloc) alloc = helper_alloc_new(fx->config, NULL);
  guint64 cursor = helper_alloc_uid_cursor(alloc);
  g_autoptr(GError) error = NULL;
  guint calls = 0;
  /* This fixture's image and QEMU are not on the known-good list: a warning, not a refusal. */
  g_test_expect_message(G_LOG_DOMAIN, G_LOG_LEVEL_WARNING, "VM " VM " starts although *");
  launch_fails(fx, alloc, VM, take_locks, &calls, &error);
  g_test_assert_expected_messages();
  g_assert_nonnull(error);
  g_assert_nonnull(strstr(error->message, "/run: Not a directory"));
  g_assert_cmpuint(calls, ==, 1);
  g_assert_cmpuint(helper_alloc_uid_cursor(alloc), !=, cursor); /* uids were reserved */
  g_autofree char *holder = cid_holder(fx, alloc);
  g_assert_null(holder);
  assert_owned(fx->instance, LCVM_INSTANCE_DATA_DISK, 0, 0600);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add("/instance/" path, Fixture, NULL, setup, fn, teardown)
  ADD("shared-holds-byte-equal-copies-never-links",
      test_shared_holds_byte_equal_copies_never_links);
  ADD("sys-config-names-the-host-api-and-the-vm-config",
      test_sys_config_names_the_host_api_and_the_vm_config);
  ADD("docker-registry-from-client-conf-reaches-sys-config",
      test_docker_registry_from_client_conf_reaches_sys_config);
  ADD("untrusted-client-conf-is-refused", test_untrusted_client_conf_is_refused);
  ADD("data-disk-is-made-once-as-the-vm-uid", test_data_disk_is_made_once_as_the_vm_uid);
  ADD("symlinked-definition-file-is-refused-leaving-nothing",
      test_symlinked_definition_file_is_refused_leaving_nothing);
  ADD("hard-linked-definition-file-is-refused-leaving-nothing",
      test_hard_linked_definition_file_is_refused_leaving_nothing);
  ADD("hard-linked-instance-info-is-not-carried-over",
      test_hard_linked_instance_info_is_not_carried_over);
  ADD("tampered-compose-is-refused-naming-both-hashes",
      test_tampered_compose_is_refused_naming_both_hashes);
  ADD("failure-after-shared-is-built-removes-the-new-instance",
      test_failure_after_shared_is_built_removes_the_new_instance);
  ADD("failing-qemu-img-leaves-no-disk-and-no-instance",
      test_failing_qemu_img_leaves_no_disk_and_no_instance);
  ADD("existing-instance-keeps-its-shared-when-a-start-fails",
      test_existing_instance_keeps_its_shared_when_a_start_fails);
  ADD("symlinked-instance-dir-is-refused", test_symlinked_instance_dir_is_refused);
  ADD("deeply-nested-image-metadata-is-refused", test_deeply_nested_image_metadata_is_refused);
  ADD("rootfs-is-opened-only-below-the-image-dir", test_rootfs_is_opened_only_below_the_image_dir);
  ADD("root-is-never-the-vm-uid", test_root_is_never_the_vm_uid);
  ADD("launch-of-an-undefined-vm-takes-no-lock", test_launch_of_an_undefined_vm_takes_no_lock);
  ADD("launch-stops-at-a-held-device-lock-leaving-nothing",
      test_launch_stops_at_a_held_device_lock_leaving_nothing);
  ADD("launch-failing-after-prepare-gives-everything-back",
      test_launch_failing_after_prepare_gives_everything_back);
#undef ADD
  return g_test_run();
}
