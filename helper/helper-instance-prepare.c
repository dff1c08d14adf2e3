/* SPDX-License-Identifier: MIT */
/* Assembly of state_dir/instances/NAME/ for a start (see helper-instance.h). Everything below
 * state_dir is reached through dirfds opened with O_NOFOLLOW, files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW and renamed into place, and the one program run (qemu-img) runs
 * confined as the VM's uid on an fd the helper opened. Never a link to a definition file,
 * never a path followed out of the instance directory, never a half-made instance left
 * behind: every step records what it created so a failure can take it back. */
#include "helper-client-conf.h"
#include "helper-instance.h"
#include "lcvm-names.h"
#include "helper-instance-private.h"
#include "helper-spawn.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include "lcvm-safe-io.h"
#include "lcvm-sysconfig.h"
#include "lcvm-text.h"
#include "lcvm-trust.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#define INSTANCE_DIR_MODE      0711
#define SHARED_DIR_MODE        0700
#define SHARED_FILE_MODE       0600
#define DATA_DISK_MODE         0600
#define QEMU_IMG_TIMEOUT_MS    60000
#define QEMU_IMG_MAX_OUTPUT    4096
#define QEMU_IMG_CHILD_DISK_FD 3

/* One prepare call: the directories it works in and what it has created so far. */
typedef struct {
  const LcvmConfig *config;
  const HelperDefinition *def;
  const char *name;
  uid_t uid;
  int instances_fd;
  int dir_fd;        /* instances/NAME */
  int new_shared_fd; /* the shared/ being built */
  char *new_shared;  /* its name in dir_fd while it is not yet shared/ */
  gboolean created_dir;
  gboolean created_disk;
} Assembly;

static gboolean
errno_error(GError **error, const Assembly *a, const char *what, const char *path)
{
  int err = errno;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s: %s %s/%s/%s: %s", a->name, what,
              LCVM_STATE_INSTANCES, a->name, path, g_strerror(err));
  return FALSE;
}

/* ---- the instance directory ---- */

/* Only root may be able to change what the helper finds in a directory it writes. */
static gboolean
check_root_dir(int fd, const char *what, GError **error)
{
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH)))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "refusing %s: it must be a directory owned by root and writable by root alone "
              "(found uid %u, mode %04o); only lium-cvm-helper writes there — fix it with "
              "`chown root:root` and `chmod 0711`",
              what, (guint)st.st_uid, (guint)(st.st_mode & 07777));
  return FALSE;
}

static int
open_instances_dir(const LcvmConfig *config, GError **error)
{
  lcvm_autofd int state_fd = lcvm_open_dir_at(AT_FDCWD, config->state_dir, error);
  if (state_fd < 0)
    return -1;
  if (mkdirat(state_fd, LCVM_STATE_INSTANCES, INSTANCE_DIR_MODE) < 0 && errno != EEXIST) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot create %s/%s: %s", config->state_dir,
                LCVM_STATE_INSTANCES, g_strerror(errno));
    return -1;
  }
  g_autoptr(GError) local = NULL;
  lcvm_autofd int fd = lcvm_open_dir_at(state_fd, LCVM_STATE_INSTANCES, &local);
  g_autofree char *path = lcvm_layout_instances_dir(config);
  if (fd < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "refusing %s (%s): it must be a directory, never a symlink", path, local->message);
    return -1;
  }
  if (!check_root_dir(fd, path, error))
    return -1;
  return lcvm_steal_fd(&fd);
}

static gboolean
open_instance_dir(Assembly *a, GError **error)
{
  a->instances_fd = open_instances_dir(a->config, error);
  if (a->instances_fd < 0)
    return FALSE;
  if (mkdirat(a->instances_fd, a->name, INSTANCE_DIR_MODE) == 0)
    a->created_dir = TRUE;
  else if (errno != EEXIST)
    return errno_error(error, a, "cannot create", "");
  g_autoptr(GError) local = NULL;
  a->dir_fd = lcvm_open_dir_at(a->instances_fd, a->name, &local);
  g_autofree char *path = lcvm_layout_instance_dir(a->config, a->name, NULL);
  if (a->dir_fd < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "refusing %s (%s): it must be a directory, never a symlink; remove it", path,
                local->message);
    return FALSE;
  }
  if (a->created_dir && fchmod(a->dir_fd, INSTANCE_DIR_MODE) < 0)
    return errno_error(error, a, "cannot set the mode of", "");
  return check_root_dir(a->dir_fd, path, error);
}

/* ---- shared/ ---- */

/* Written whole and handed to the VM's uid: QEMU serves it over 9p as that uid. */
static gboolean
put_file(Assembly *a, const char *file, const char *bytes, gsize len, GError **error)
{
  if (!lcvm_write_file_atomic_at(a->new_shared_fd, file, bytes, len, SHARED_FILE_MODE, error)) {
    g_prefix_error(error, "VM %s: shared/: ", a->name);
    return FALSE;
  }
  if (fchownat(a->new_shared_fd, file, a->uid, a->uid, AT_SYMLINK_NOFOLLOW) < 0)
    return errno_error(error, a, "cannot hand over", file);
  return TRUE;
}

/* The hash is taken of the very bytes written to shared/, so what the guest measures is what
 * was checked, whatever happens to the definition meanwhile. */
static gboolean
copy_compose(Assembly *a, int vm_fd, GError **error)
{
  const LcvmManifest *m = a->def->manifest;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  g_autofree char *bytes = helper_instance_read_definition_file(
      vm_fd, m, LCVM_APP_COMPOSE_FILE, LCVM_APP_COMPOSE_MAX_SIZE, &len, &local);
  if (bytes == NULL && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "VM %s: the definition has no %s; define the VM again", m->name,
                LCVM_APP_COMPOSE_FILE);
    return FALSE;
  }
  if (bytes == NULL) {
    g_propagate_error(error, g_steal_pointer(&local));
    return FALSE;
  }
  return helper_instance_check_compose(m, bytes, len, error) &&
         put_file(a, LCVM_APP_COMPOSE_FILE, bytes, len, error);
}

static gboolean
copy_optional(Assembly *a, int vm_fd, const char *file, gsize max, GError **error)
{
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  g_autofree char *bytes =
      helper_instance_read_definition_file(vm_fd, a->def->manifest, file, max, &len, &local);
  if (bytes != NULL)
    return put_file(a, file, bytes, len, error);
  if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return TRUE;
  g_propagate_error(error, g_steal_pointer(&local));
  return FALSE;
}

static gboolean
copy_definition_files(Assembly *a, GError **error)
{
  lcvm_autofd int vm_fd = helper_instance_open_definition(a->config, a->name, error);
  return vm_fd >= 0 && copy_compose(a, vm_fd, error) &&
         copy_optional(a, vm_fd, LCVM_USER_CONFIG_FILE, LCVM_USER_CONFIG_MAX_SIZE, error) &&
         copy_optional(a, vm_fd, LCVM_SHARED_ENCRYPTED_ENV, HELPER_INSTANCE_ENCRYPTED_ENV_MAX,
                       error);
}

/* The guest reports its instance id through the host API and finds it again in shared/ at
 * the next boot. The old shared/ belongs to the VM's uid, so its copy is read like untrusted
 * input; one that is not a small regular file of one name is dropped (the guest reports it
 * again). */
static gboolean
carry_instance_info(Assembly *a, GError **error)
{
  lcvm_autofd int old_fd =
      openat(a->dir_fd, LCVM_INSTANCE_SHARED_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (old_fd < 0)
    return TRUE;
  g_autofree char *bytes = NULL;
  gsize len = 0;
  gboolean found = lcvm_read_untrusted_file_at(old_fd, LCVM_SHARED_INSTANCE_INFO,
                                               LCVM_INSTANCE_INFO_MAX, &bytes, &len, NULL);
  return !found || put_file(a, LCVM_SHARED_INSTANCE_INFO, bytes, len, error);
}

static gboolean
write_sys_config(Assembly *a, const LcvmQemuSpec *spec, guint16 hostapi_port, GError **error)
{
  const LcvmImage *image = a->def->image;
  GError *local = NULL;
  g_autofree char *registry = helper_client_conf_docker_registry(a->config, &local);
  if (local != NULL) {
    g_propagate_prefixed_error(error, local,
                               "VM %s: dstack's client.conf ([docker] registry): ", a->name);
    return FALSE;
  }
  LcvmGuestConfig guest = {
    .docker_registry = registry,
    .host_api_port = hostapi_port,
    .os_image_hash = a->def->manifest->os_image_hash,
    .image = image->name,
    .ovmf_variant = g_hash_table_lookup(image->metadata_extra, "ovmf_variant"),
  };
  gsize len = 0;
  g_autofree char *json = lcvm_sys_config_json(spec, &guest, &len, error);
  return json != NULL && put_file(a, LCVM_SHARED_SYS_CONFIG, json, len, error);
}

static gboolean
build_shared(Assembly *a, const LcvmQemuSpec *spec, guint16 hostapi_port, GError **error)
{
  a->new_shared = g_strdup_printf(".%s.new-%08x", LCVM_INSTANCE_SHARED_DIR, g_random_int());
  if (mkdirat(a->dir_fd, a->new_shared, SHARED_DIR_MODE) < 0) {
    g_clear_pointer(&a->new_shared, g_free);
    return errno_error(error, a, "cannot create", LCVM_INSTANCE_SHARED_DIR);
  }
  a->new_shared_fd = lcvm_open_dir_at(a->dir_fd, a->new_shared, error);
  if (a->new_shared_fd < 0)
    return FALSE;
  if (!copy_definition_files(a, error) || !carry_instance_info(a, error) ||
      !write_sys_config(a, spec, hostapi_port, error))
    return FALSE;
  if (fchmod(a->new_shared_fd, SHARED_DIR_MODE) < 0 ||
      fchown(a->new_shared_fd, a->uid, a->uid) < 0 || fsync(a->new_shared_fd) < 0)
    return errno_error(error, a, "cannot hand over", LCVM_INSTANCE_SHARED_DIR);
  return TRUE;
}

/* The new shared/ replaces the old one in one rename; the old one is then removed. */
static gboolean
swap_shared(Assembly *a, GError **error)
{
  if (renameat2(a->dir_fd, a->new_shared, a->dir_fd, LCVM_INSTANCE_SHARED_DIR, RENAME_EXCHANGE) <
      0) {
    if (errno != ENOENT || renameat2(a->dir_fd, a->new_shared, a->dir_fd, LCVM_INSTANCE_SHARED_DIR,
                                     RENAME_NOREPLACE) < 0)
      return errno_error(error, a, "cannot put in place", LCVM_INSTANCE_SHARED_DIR);
    g_clear_pointer(&a->new_shared, g_free);
    return TRUE;
  }
  g_autoptr(GError) local = NULL;
  if (!lcvm_remove_tree_at(a->dir_fd, a->new_shared, &local))
    g_warning("VM %s: the previous shared/ stays as %s: %s", a->name, a->new_shared,
              local->message);
  g_clear_pointer(&a->new_shared, g_free);
  return TRUE;
}

/* ---- the data disk ---- */

/* `qemu-img create -f qcow2 DISK SIZE` as the VM's uid, DISK being the file the helper
 * created and handed over, reached through the child's own fd. */
static gboolean
run_qemu_img(Assembly *a, const char *qemu_img, int disk_fd, GError **error)
{
  g_autofree char *target = g_strdup_printf("/proc/self/fd/%d", QEMU_IMG_CHILD_DISK_FD);
  g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, a->def->manifest->disk);
  const char *argv[] = { qemu_img, "create", "-q", "-f", "qcow2", target, size, NULL };
  HelperSpawnFd fds[] = { { disk_fd, QEMU_IMG_CHILD_DISK_FD } };
  HelperSpawnOptions options = {
    .argv = argv,
    .fds = fds,
    .n_fds = G_N_ELEMENTS(fds),
    .uid = a->uid,
    .gid = a->uid,
    .profile = LCVM_SECCOMP_QEMU,
  };
  HelperCaptureOptions capture = { .timeout_ms = QEMU_IMG_TIMEOUT_MS,
                                   .max_output = QEMU_IMG_MAX_OUTPUT };
  g_auto(HelperCaptured) run = { 0 };
  if (!helper_spawn_capture(&options, &capture, &run, error)) {
    g_prefix_error(error, "VM %s: qemu-img: ", a->name);
    return FALSE;
  }
  if (!run.timed_out && run.exited && run.status == 0)
    return TRUE;
  g_autofree char *how = helper_captured_how(&run, &capture);
  g_autofree char *said = lcvm_text_for_message_max(g_strstrip(run.err->str), QEMU_IMG_MAX_OUTPUT);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "VM %s: `%s create -f qcow2` of the data disk failed (%s): %s", a->name, qemu_img,
              how, said);
  return FALSE;
}

static gboolean
create_data_disk(Assembly *a, GError **error)
{
  g_autofree char *qemu_img = lcvm_trusted_path(a->config->qemu_img, error);
  if (qemu_img == NULL) {
    g_prefix_error(error, "VM %s: cannot create its data disk ([tools] qemu_img): ", a->name);
    return FALSE;
  }
  g_autofree char *tmp = g_strdup_printf(".%s.new-%08x", LCVM_INSTANCE_DATA_DISK, g_random_int());
  lcvm_autofd int fd =
      openat(a->dir_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, DATA_DISK_MODE);
  if (fd < 0)
    return errno_error(error, a, "cannot create", tmp);
  gboolean ok = fchown(fd, a->uid, a->uid) == 0 || errno_error(error, a, "cannot hand over", tmp);
  ok = ok && run_qemu_img(a, qemu_img, fd, error);
  ok = ok && (fsync(fd) == 0 || errno_error(error, a, "cannot sync", tmp));
  lcvm_close_fdp(&fd);
  ok =
      ok && (renameat2(a->dir_fd, tmp, a->dir_fd, LCVM_INSTANCE_DATA_DISK, RENAME_NOREPLACE) == 0 ||
             errno_error(error, a, "cannot put in place", LCVM_INSTANCE_DATA_DISK));
  if (!ok)
    unlinkat(a->dir_fd, tmp, 0);
  a->created_disk = ok;
  return ok;
}

/* Created on the first start only: the guest encrypts it with a key bound to the launch
 * measurements, so an existing disk is the VM's data and is never recreated. */
static gboolean
ensure_data_disk(Assembly *a, GError **error)
{
  struct stat st;
  if (fstatat(a->dir_fd, LCVM_INSTANCE_DATA_DISK, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT)
      return errno_error(error, a, "cannot inspect", LCVM_INSTANCE_DATA_DISK);
    return create_data_disk(a, error);
  }
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "VM %s: %s/%s/%s is not a regular file; move it away (it is not a disk this "
                "helper created)",
                a->name, LCVM_STATE_INSTANCES, a->name, LCVM_INSTANCE_DATA_DISK);
    return FALSE;
  }
  if (fchownat(a->dir_fd, LCVM_INSTANCE_DATA_DISK, a->uid, a->uid, AT_SYMLINK_NOFOLLOW) < 0)
    return errno_error(error, a, "cannot hand over", LCVM_INSTANCE_DATA_DISK);
  return TRUE;
}

/* ---- the whole assembly ---- */

static void
roll_back(Assembly *a)
{
  if (a->new_shared != NULL)
    lcvm_remove_tree_at(a->dir_fd, a->new_shared, NULL);
  if (a->created_disk)
    unlinkat(a->dir_fd, LCVM_INSTANCE_DATA_DISK, 0);
  if (a->created_dir)
    lcvm_remove_tree_at(a->instances_fd, a->name, NULL);
}

static void
assembly_close(Assembly *a)
{
  lcvm_close_fdp(&a->new_shared_fd);
  lcvm_close_fdp(&a->dir_fd);
  lcvm_close_fdp(&a->instances_fd);
  g_free(a->new_shared);
}

gboolean
helper_instance_prepare(const LcvmConfig *config, const HelperDefinition *def,
                        const LcvmQemuSpec *spec, uid_t vm_uid, guint16 hostapi_port,
                        GError **error)
{
  if (vm_uid == 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "VM %s: refusing to hand its instance to uid 0", def->manifest->name);
    return FALSE;
  }
  Assembly a = { config, def, def->manifest->name, vm_uid, -1, -1, -1, NULL, FALSE, FALSE };
  gboolean ok = open_instance_dir(&a, error) && build_shared(&a, spec, hostapi_port, error) &&
                ensure_data_disk(&a, error) && swap_shared(&a, error);
  ok = ok && (fsync(a.dir_fd) == 0 || errno_error(error, &a, "cannot sync", ""));
  if (!ok)
    roll_back(&a);
  assembly_close(&a);
  return ok;
}
