/* SPDX-License-Identifier: MIT */
/* A VM's launch and release on the host (see helper-vm-launch.h). Runs in a worker thread; the only
 * shared state it touches is the reservation table, which locks itself. Every file it opens
 * below state_dir or runtime_dir is reached without following a symlink; QEMU gets fds, never
 * a path it could be tricked into opening as root. Never runs anything as root. */
#include "helper-vm-launch.h"
#include "lcvm-image.h"
#include "helper-act.h"
#include "helper-bridge.h"
#include "helper-instance.h"
#include "helper-known-good.h"
#include "helper-mrenclave.h"
#include "helper-nft.h"
#include "helper-qemu-view.h"
#include "helper-sanitize.h"
#include "helper-spawn.h"
#include "helper-uid-cursor.h"
#include "helper-uid-purge.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include "lcvm-names.h"
#include "lcvm-pci.h"
#include "lcvm-safe-io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/vhost.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_MODE            0640
#define SERIAL_ROTATE_BYTES (4 * 1024 * 1024)
#define CHOWN_MAX_DEPTH     16
#define LOG_TAIL_BYTES      4096
#define LOG_LINE_BYTES      160
#define LOG_TAIL_MAX        (64 * 1024)
#define MIB                 (G_GUINT64_CONSTANT(1) << 20)
#define BOOT_MARKER         "===== lium-cvm: boot @ "

/* What one launch holds, so a failure can give it back. */
typedef struct {
  const LcvmConfig *config;
  HelperAlloc *alloc;
  const char *name;
  HelperDefinition *def;
  HelperReservation *res;
  LcvmQemuSpec *spec;
  gboolean prepared;
  gboolean guarded;
  GPtrArray *dev_nodes;
  int instance_fd;
  int runtime_fd;
  int fds[LCVM_QEMU_FD_LIMIT]; /* parent fds by child fd number (LCVM_QEMU_FD_*, 1 and 2) */
  HelperBridge bridge;
} Launch;

static gboolean
errno_error(GError **error, const char *name, const char *what, const char *path)
{
  int err = errno;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s: %s %s: %s", name, what, path,
              g_strerror(err));
  return FALSE;
}

/* ---- the vsock CID ---- */

/* Whether the kernel would give cid to a new vhost-vsock device: EADDRINUSE when another VM
 * (of any hypervisor) has it. Other failures are QEMU's to report. */
static int
cid_probe(const LcvmConfig *config, guint cid)
{
  g_autofree char *path = lcvm_config_path(config->dev_root, "vhost-vsock");
  lcvm_autofd int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return 0;
  guint64 value = cid;
  if (ioctl(fd, VHOST_SET_OWNER) == 0 && ioctl(fd, VHOST_VSOCK_SET_GUEST_CID, &value) < 0)
    return errno;
  return 0;
}

/* The spec, with a CID the kernel accepts (cid_range is tried upwards on EADDRINUSE). */
static gboolean
build_spec(Launch *l, GError **error)
{
  for (;;) {
    l->spec = helper_instance_spec(l->config, l->def, l->res->cid, error);
    if (l->spec == NULL)
      return FALSE;
    if (l->spec->vsock_cid == 0 || cid_probe(l->config, l->spec->vsock_cid) != EADDRINUSE)
      return TRUE;
    g_message("VM %s: vsock CID %u is taken by another VM, trying the next", l->name, l->res->cid);
    g_clear_pointer(&l->spec, lcvm_qemu_spec_free);
    if (!helper_alloc_next_cid(l->alloc, l->name, l->res, error))
      return FALSE;
  }
}

/* ---- files QEMU gets as fds ---- */

int
helper_vm_instance_dir_open(const LcvmConfig *config, const char *name, GError **error)
{
  g_autofree char *rel = lcvm_layout_instance_rel(name, NULL, error);
  if (rel == NULL)
    return -1;
  lcvm_autofd int state_fd = lcvm_open_dir_at(AT_FDCWD, config->state_dir, error);
  if (state_fd < 0)
    return -1;
  return lcvm_open_beneath(state_fd, rel, O_RDONLY | O_DIRECTORY, error);
}

/* The operators' group (0 when the host has none); launches run in worker threads, so the
 * reentrant lookup. */
static gid_t
operators_gid(void)
{
  char buf[4096];
  struct group grp, *found = NULL;
  if (getgrnam_r(LCVM_GROUP, &grp, buf, sizeof buf, &found) != 0 || found == NULL)
    return 0;
  return found->gr_gid;
}

/* A log QEMU appends to: root-owned, readable by the operators' group (never followed,
 * never anything but a regular file). A console log past SERIAL_ROTATE_BYTES is kept as
 * NAME.1 and started afresh. */
static int
open_log(Launch *l, const char *file, gboolean rotate, GError **error)
{
  struct stat st;
  if (rotate && fstatat(l->instance_fd, file, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISREG(st.st_mode) && st.st_size > SERIAL_ROTATE_BYTES) {
    g_autofree char *old = g_strconcat(file, ".1", NULL);
    renameat(l->instance_fd, file, l->instance_fd, old);
  }
  lcvm_autofd int fd =
      openat(l->instance_fd, file,
             O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, LOG_MODE);
  if (fd < 0) {
    errno_error(error, l->name, "cannot open", file);
    return -1;
  }
  gid_t gid = operators_gid();
  if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fchown(fd, 0, gid) < 0 ||
      fchmod(fd, gid != 0 ? LOG_MODE : 0600) < 0) {
    errno_error(error, l->name, "cannot take over", file);
    return -1;
  }
  return lcvm_steal_fd(&fd);
}

static void
write_boot_marker(int fd)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *when = g_date_time_format_iso8601(now);
  g_autofree char *line = g_strdup_printf("\n" BOOT_MARKER "%s =====\n", when);
  if (write(fd, line, strlen(line)) < 0)
    g_warning("cannot write the boot marker: %s", g_strerror(errno));
}

/* The listening socket QEMU accepts QMP clients on (only ever the helper). */
static int
qmp_listen(Launch *l, GError **error)
{
  g_autofree char *path = helper_runtime_path(l->config, l->name, LCVM_RUNTIME_QMP);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof addr.sun_path) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "VM %s: the QMP socket path %s is too long; choose a shorter runtime_dir", l->name,
                path);
    return -1;
  }
  strcpy(addr.sun_path, path);
  if (unlinkat(l->runtime_fd, LCVM_RUNTIME_QMP, 0) < 0 && errno != ENOENT) {
    errno_error(error, l->name, "cannot remove the stale", path);
    return -1;
  }
  lcvm_autofd int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 ||
      fchmodat(l->runtime_fd, LCVM_RUNTIME_QMP, 0600, 0) < 0 || listen(fd, 1) < 0) {
    errno_error(error, l->name, "cannot listen on", path);
    return -1;
  }
  return lcvm_steal_fd(&fd);
}

static gboolean
open_disk(Launch *l, int child_fd, int flags, GError **error)
{
  l->fds[child_fd] =
      openat(l->instance_fd, LCVM_INSTANCE_DATA_DISK, flags | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  return l->fds[child_fd] >= 0 ||
         errno_error(error, l->name, "cannot open", LCVM_INSTANCE_DATA_DISK);
}

static gboolean
open_fds(Launch *l, GError **error)
{
  l->instance_fd = helper_vm_instance_dir_open(l->config, l->name, error);
  l->runtime_fd =
      l->instance_fd < 0 ? -1 : helper_runtime_dir_open(l->config, l->name, TRUE, error);
  if (l->runtime_fd < 0)
    return FALSE;
  l->fds[LCVM_QEMU_FD_QMP] = qmp_listen(l, error);
  if (l->fds[LCVM_QEMU_FD_QMP] < 0)
    return FALSE;
  l->fds[LCVM_QEMU_FD_SERIAL] = open_log(l, LCVM_INSTANCE_SERIAL_LOG, TRUE, error);
  if (l->fds[LCVM_QEMU_FD_SERIAL] < 0)
    return FALSE;
  write_boot_marker(l->fds[LCVM_QEMU_FD_SERIAL]);
  l->fds[STDERR_FILENO] = open_log(l, LCVM_INSTANCE_QEMU_LOG, TRUE, error);
  if (l->fds[STDERR_FILENO] < 0)
    return FALSE;
  write_boot_marker(l->fds[STDERR_FILENO]);
  l->fds[STDOUT_FILENO] = dup(l->fds[STDERR_FILENO]);
  /* Beneath the image dir with no symlink anywhere: operators can write images/. QEMU reads
   * these open files, so a link swapped in afterwards changes nothing. */
  static const struct {
    int child_fd;
    const char *key;
  } artefacts[] = {
    { LCVM_QEMU_FD_ROOTFS, "rootfs" },
    { LCVM_QEMU_FD_KERNEL, "kernel" },
    { LCVM_QEMU_FD_INITRD, "initrd" },
    { LCVM_QEMU_FD_BIOS, "bios" },
  };
  for (guint i = 0; i < G_N_ELEMENTS(artefacts); i++) {
    l->fds[artefacts[i].child_fd] =
        lcvm_image_open_artefact(l->def->image, artefacts[i].key, error);
    if (l->fds[artefacts[i].child_fd] < 0)
      return FALSE;
  }
  return open_disk(l, LCVM_QEMU_FD_DATA_DISK, O_RDWR, error) &&
         open_disk(l, LCVM_QEMU_FD_DATA_DISK_RO, O_RDONLY, error);
}

/* ---- device nodes ---- */

/* iommufd (QEMU >= 10): /dev/iommu and each device's vfio cdev, opened here as root and passed
 * at the child fds the spec names (reference/field-2026.md §7.2); QEMU binds and attaches
 * them. Opened after the sanitize reset, which must run while nobody holds the cdev. */
static gboolean
open_node(Launch *l, const char *path, int child_fd, GError **error)
{
  l->fds[child_fd] = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  return l->fds[child_fd] >= 0 || errno_error(error, l->name, "cannot open", path);
}

static gboolean
open_vfio_cdevs(Launch *l, const LcvmQemuDevice *devices, guint n, GError **error)
{
  for (guint i = 0; i < n; i++) {
    if (devices[i].vfio_fd <= 0)
      continue;
    g_auto(LcvmPciState) st = { 0 };
    lcvm_pci_state_read(l->config->sysfs_root, devices[i].slot, &st);
    if (st.vfio_dev == NULL) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                  "VM %s: %s has no vfio-dev node, which QEMU >= 10 (iommufd) needs: the kernel "
                  "needs CONFIG_VFIO_DEVICE_CDEV, and the device must be on vfio-pci "
                  "('lium-cvm gpu bind %s')",
                  l->name, devices[i].slot, devices[i].slot);
      return FALSE;
    }
    g_autofree char *path =
        g_build_filename(l->config->dev_root, "vfio", "devices", st.vfio_dev, NULL);
    if (!open_node(l, path, devices[i].vfio_fd, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
open_iommufd(Launch *l, GError **error)
{
  if (l->spec->iommufd_fd <= 0)
    return TRUE;
  g_autofree char *iommu = lcvm_config_path(l->config->dev_root, "iommu");
  if (!open_node(l, iommu, l->spec->iommufd_fd, error)) {
    if (error == NULL || *error == NULL)
      return FALSE;
    helper_act_append_error(error, " (QEMU >= 10 attaches devices through iommufd: 'lium-cvm "
                                   "load-modules iommufd' loads it; the kernel needs "
                                   "CONFIG_IOMMUFD)");
    return FALSE;
  }
  return open_vfio_cdevs(l, l->spec->gpus, l->spec->n_gpus, error) &&
         open_vfio_cdevs(l, l->spec->nvswitches, l->spec->n_nvswitches, error);
}

/* Legacy VFIO (QEMU < 10): QEMU opens the IOMMU group node itself, so it is handed to the
 * VM's uid for the VM's life. */
static void
collect_dev_nodes(Launch *l, const LcvmQemuDevice *devices, guint n)
{
  if (lcvm_qemu_spec_uses_iommufd(l->spec))
    return;
  for (guint i = 0; i < n; i++) {
    g_auto(LcvmPciState) st = { 0 };
    lcvm_pci_state_read(l->config->sysfs_root, devices[i].slot, &st);
    if (st.iommu_group < 0)
      continue;
    g_autofree char *node = g_strdup_printf("%s/vfio/%d", l->config->dev_root, st.iommu_group);
    if (!g_ptr_array_find_with_equal_func(l->dev_nodes, node, g_str_equal, NULL))
      g_ptr_array_add(l->dev_nodes, g_steal_pointer(&node));
  }
}

static void
chown_nodes(char *const *nodes, guint n, uid_t uid)
{
  for (guint i = 0; i < n; i++)
    if (fchownat(AT_FDCWD, nodes[i], uid, uid, AT_SYMLINK_NOFOLLOW) < 0)
      g_warning("cannot hand %s to uid %u: %s", nodes[i], (guint)uid, g_strerror(errno));
}

static gboolean
hand_over_devices(Launch *l, GError **error)
{
  collect_dev_nodes(l, l->spec->gpus, l->spec->n_gpus);
  collect_dev_nodes(l, l->spec->nvswitches, l->spec->n_nvswitches);
  for (guint i = 0; i < l->dev_nodes->len; i++) {
    const char *node = l->dev_nodes->pdata[i];
    if (fchownat(AT_FDCWD, node, l->res->qemu_uid, l->res->qemu_uid, AT_SYMLINK_NOFOLLOW) < 0) {
      errno_error(error, l->name, "cannot hand over", node);
      chown_nodes((char *const *)l->dev_nodes->pdata, i, 0);
      g_ptr_array_set_size(l->dev_nodes, 0);
      return FALSE;
    }
  }
  return TRUE;
}

/* ---- the instance files ---- */

/* Everything under the instance the QEMU uid was given goes back to root at the end, so a
 * later VM that gets the same uid can never open it. Never follows a symlink. */
static void
chown_tree_at(int at, const char *name, int depth)
{
  struct stat st;
  if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return;
  if (fchownat(at, name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
    g_warning("cannot give %s back to root: %s", name, g_strerror(errno));
  if (!S_ISDIR(st.st_mode) || depth >= CHOWN_MAX_DEPTH)
    return;
  lcvm_autofd int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
  if (dir == NULL)
    return;
  lcvm_steal_fd(&fd); /* closedir closes it */
  for (struct dirent *e = readdir(dir); e != NULL; e = readdir(dir))
    if (!g_str_equal(e->d_name, ".") && !g_str_equal(e->d_name, ".."))
      chown_tree_at(dirfd(dir), e->d_name, depth + 1);
  closedir(dir);
}

static void
hand_back_instance(const LcvmConfig *config, const char *name)
{
  g_autoptr(GError) error = NULL;
  lcvm_autofd int fd = helper_vm_instance_dir_open(config, name, &error);
  if (fd < 0) {
    g_warning("VM %s: cannot give its instance back to root: %s", name, error->message);
    return;
  }
  chown_tree_at(fd, LCVM_INSTANCE_DATA_DISK, CHOWN_MAX_DEPTH);
  chown_tree_at(fd, LCVM_INSTANCE_SHARED_DIR, 0);
}

/* ---- spawn and record ---- */

static GStrv
forward_texts(const LcvmQemuSpec *spec)
{
  GStrv out = g_new0(char *, spec->n_forwards + 1);
  for (guint i = 0; i < spec->n_forwards; i++) {
    const LcvmQemuForward *f = &spec->forwards[i];
    out[i] = g_strdup_printf("%s:%s:%u:%u", f->protocol, f->address, f->host_port, f->guest_port);
  }
  return out;
}

static HelperRecord *
spawn_qemu(Launch *l, GStrv argv, int *pidfd, GError **error)
{
  static const char *const envp[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };
  HelperSpawnFd fds[G_N_ELEMENTS(l->fds)];
  gsize n = 0;
  for (int i = 0; i < (int)G_N_ELEMENTS(l->fds); i++)
    if (l->fds[i] >= 0)
      fds[n++] = (HelperSpawnFd){ l->fds[i], i };
  guint n_devices = l->spec->n_gpus + l->spec->n_nvswitches;
  g_autoptr(HelperSandbox) view =
      helper_qemu_view(l->config, l->spec, l->res->qemu_uid, l->dev_nodes, error);
  if (view == NULL) {
    g_prefix_error(error, "VM %s: ", l->name);
    return NULL;
  }
  HelperSpawnOptions options = {
    .argv = (const char *const *)argv,
    .envp = envp,
    .fds = fds,
    .n_fds = n,
    .uid = l->res->qemu_uid,
    .gid = l->res->qemu_uid,
    .sandbox = view,
    .memlock =
        helper_spawn_memlock_for(lcvm_qemu_spec_effective_memory_mib(l->spec) * MIB, n_devices),
    .profile = LCVM_SECCOMP_QEMU,
  };
  HelperSpawnChild child = { 0 };
  if (!helper_spawn(&options, &child, error)) {
    g_prefix_error(error, "VM %s: ", l->name);
    return NULL;
  }
  g_autoptr(HelperRecord) r = g_new0(HelperRecord, 1);
  r->name = g_strdup(l->name);
  r->pid = child.pid;
  r->started_at = (guint64)(g_get_real_time() / G_USEC_PER_SEC);
  r->argv = g_strdupv(argv);
  r->forwards = forward_texts(l->spec);
  r->compose_hash = g_strdup(l->def->manifest->compose_hash);
  r->os_image_hash = g_strdup(l->def->manifest->os_image_hash);
  r->qemu_version = g_strdup(l->def->qemu_version.text);
  *pidfd = child.pidfd;
  return g_steal_pointer(&r);
}

/* The record makes the VM survive a helper restart; without it the VM would be an orphan
 * nobody can stop, so a QEMU whose record cannot be written is killed at once. */
static gboolean
record_or_kill(Launch *l, HelperRecord *r, int pidfd, GError **error)
{
  if (helper_process_start_time(r->pid, &r->start_time, error) &&
      helper_record_write(l->config, r, error))
    return TRUE;
  g_prefix_error(error, "VM %s: QEMU was stopped again, its runtime record failed: ", l->name);
  helper_process_signal(pidfd, SIGKILL);
  waitid(P_PIDFD, (id_t)pidfd, &(siginfo_t){ 0 }, WEXITED);
  return FALSE;
}

/* ---- launch ---- */

static void
launch_clear(Launch *l, gboolean failed)
{
  for (guint i = 0; i < G_N_ELEMENTS(l->fds); i++)
    lcvm_close_fdp(&l->fds[i]);
  lcvm_close_fdp(&l->instance_fd);
  lcvm_close_fdp(&l->runtime_fd);
  if (failed && l->bridge.pidfd >= 0)
    g_free(helper_bridge_stop(l->bridge.pidfd));
  helper_bridge_clear(&l->bridge);
  if (failed) {
    chown_nodes((char *const *)l->dev_nodes->pdata, l->dev_nodes->len, 0);
    if (l->guarded)
      helper_nft_guard_remove(l->name, NULL);
    if (l->prepared)
      hand_back_instance(l->config, l->name);
    helper_runtime_remove(l->config, l->name, NULL);
    if (l->res != NULL) {
      helper_uid_purge(l->res->qemu_uid);
      helper_uid_purge(l->res->bridge_uid);
      helper_alloc_release(l->alloc, l->name);
    }
  }
  g_ptr_array_unref(l->dev_nodes);
  lcvm_qemu_spec_free(l->spec);
  helper_reservation_free(l->res);
  helper_definition_free(l->def);
}

/* The devices of the definition, locked; then the whole validation, which must name the same
 * devices (the definition is operator-writable and may have changed in between). */
static gboolean
lock_and_validate(Launch *l, HelperDeviceLocker lock, gpointer lock_data, GError **error)
{
  g_auto(GStrv) locked = helper_instance_devices(l->config, l->name, error);
  if (locked == NULL || !lock(lock_data, (const char *const *)locked, error))
    return FALSE;
  l->def = helper_instance_validate(l->config, l->name, error);
  if (l->def == NULL)
    return FALSE;
  g_auto(GStrv) validated = helper_instance_devices_of(l->def->manifest);
  if (g_strv_equal((const char *const *)locked, (const char *const *)validated))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_BUSY,
              "VM %s: its definition's devices changed while it started; try again", l->name);
  return FALSE;
}

static HelperRecord *
launch(Launch *l, HelperDeviceLocker lock, gpointer lock_data, int *pidfd, gint64 *exec_us,
       GError **error)
{
  gint64 t0 = g_get_monotonic_time();
  gboolean had_disk = FALSE;
  if (!lock_and_validate(l, lock, lock_data, error) ||
      !helper_known_good_check(l->config, l->name, l->def, error) ||
      !helper_mrenclave_check(l->config, l->name, &had_disk, error))
    return NULL;
  l->res = helper_alloc_reserve(l->alloc, l->name, l->def->manifest, error);
  if (l->res == NULL)
    return NULL;
  helper_uid_cursor_save(l->config, l->alloc);
  if (!build_spec(l, error) || !helper_sanitize_before_start(l->config, l->name, l->spec, error))
    return NULL;
  l->prepared = helper_instance_prepare(l->config, l->def, l->spec, l->res->qemu_uid,
                                        l->res->hostapi_port, error);
  if (l->prepared)
    helper_mrenclave_record_disk(l->config, l->name, had_disk);
  if (!l->prepared || !open_fds(l, error) || !open_iommufd(l, error))
    return NULL;
  g_auto(GStrv) argv = lcvm_qemu_argv_build(l->spec, error);
  if (argv == NULL)
    return NULL;
  l->guarded = helper_nft_guard_add(l->name, l->res->qemu_uid, l->res->hostapi_port,
                                    (const char *const *)l->config->guest_allow, error);
  if (!l->guarded || !hand_over_devices(l, error) ||
      !helper_bridge_share(l->instance_fd, l->name, l->res, error) ||
      !helper_bridge_spawn(l->config, l->name, l->res, &l->bridge, error))
    return NULL;
  g_autoptr(HelperRecord) r = spawn_qemu(l, argv, pidfd, error);
  if (r == NULL)
    return NULL;
  r->bridge_pid = l->bridge.pid;
  r->bridge_start_time = l->bridge.start_time;
  r->bridge_argv = g_strdupv(l->bridge.argv);
  if (exec_us != NULL)
    *exec_us = g_get_monotonic_time() - t0;
  r->reservation = g_steal_pointer(&l->res);
  g_ptr_array_add(l->dev_nodes, NULL);
  r->dev_nodes = g_strdupv((GStrv)l->dev_nodes->pdata);
  g_ptr_array_remove_index(l->dev_nodes, l->dev_nodes->len - 1);
  if (!record_or_kill(l, r, *pidfd, error)) {
    l->res = g_steal_pointer(&r->reservation);
    lcvm_close_fdp(pidfd);
    return NULL;
  }
  return g_steal_pointer(&r);
}

HelperRecord *
helper_vm_launch(const LcvmConfig *config, HelperAlloc *alloc, const char *name,
                 HelperDeviceLocker lock, gpointer lock_data, int *pidfd, int *bridge_pidfd,
                 gint64 *exec_us, GError **error)
{
  Launch l = {
    .config = config, .alloc = alloc, .name = name, .instance_fd = -1, .runtime_fd = -1
  };
  l.dev_nodes = g_ptr_array_new_with_free_func(g_free);
  l.bridge.pidfd = -1;
  for (guint i = 0; i < G_N_ELEMENTS(l.fds); i++)
    l.fds[i] = -1;
  *pidfd = -1;
  HelperRecord *r = launch(&l, lock, lock_data, pidfd, exec_us, error);
  *bridge_pidfd = r != NULL ? l.bridge.pidfd : -1;
  if (r != NULL)
    l.bridge.pidfd = -1;
  launch_clear(&l, r == NULL);
  return r;
}

/* ---- release ---- */

void
helper_vm_release(const LcvmConfig *config, HelperAlloc *alloc, const HelperRecord *record)
{
  g_autoptr(GError) error = NULL;
  if (!helper_nft_guard_remove(record->name, &error))
    g_warning("%s", error->message);
  chown_nodes(record->dev_nodes, g_strv_length(record->dev_nodes), 0);
  hand_back_instance(config, record->name);
  g_clear_error(&error);
  if (!helper_runtime_remove(config, record->name, &error))
    g_warning("VM %s: cannot remove its runtime directory: %s", record->name, error->message);
  /* Both processes are gone (the caller waited for them): nothing of the uids is in use. */
  helper_uid_purge(record->reservation->qemu_uid);
  helper_uid_purge(record->reservation->bridge_uid);
  helper_alloc_release(alloc, record->name);
}

gboolean
helper_vm_remove_instance(const LcvmConfig *config, const char *name, GError **error)
{
  lcvm_autofd int state_fd = lcvm_open_dir_at(AT_FDCWD, config->state_dir, error);
  if (state_fd < 0)
    return FALSE;
  g_autoptr(GError) local = NULL;
  lcvm_autofd int fd =
      lcvm_open_beneath(state_fd, LCVM_STATE_INSTANCES, O_RDONLY | O_DIRECTORY, &local);
  struct stat st;
  if (fd < 0 || fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND,
                "VM %s has no instance to remove (it never ran here)", name);
    return FALSE;
  }
  return lcvm_remove_tree_at(fd, name, error);
}

char *
helper_vm_log_tail(const LcvmConfig *config, const char *name, const char *file, guint max_lines)
{
  lcvm_autofd int dir = helper_vm_instance_dir_open(config, name, NULL);
  lcvm_autofd int fd = dir >= 0 ? openat(dir, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) : -1;
  if (fd < 0)
    return g_strdup("");
  struct stat st;
  /* Lines of a console can be long (a call trace): up to LOG_LINE_BYTES each. */
  gsize want = MIN(MAX(LOG_TAIL_BYTES, (gsize)max_lines * LOG_LINE_BYTES), LOG_TAIL_MAX);
  g_autofree char *buf = g_malloc(want + 1);
  off_t from = fstat(fd, &st) == 0 && st.st_size > (off_t)want ? st.st_size - (off_t)want : 0;
  ssize_t n = pread(fd, buf, want, from);
  buf[MAX(n, 0)] = '\0';
  g_auto(GStrv) lines = g_strsplit(g_strstrip(buf), "\n", -1);
  guint len = g_strv_length(lines);
  guint first = len > max_lines ? len - max_lines : 0;
  /* Only what this start's QEMU wrote. */
  for (guint i = first; i < len; i++)
    if (g_str_has_prefix(lines[i], BOOT_MARKER))
      first = i + 1;
  return g_strjoinv("\n", lines + first);
}
