/* SPDX-License-Identifier: MIT */
/* The per-VM runtime records (see the header). Records are written whole (O_EXCL temp +
 * rename) into a root-only directory reached without following a symlink, and read back as
 * untrusted text: every field is parsed and range-checked. Nothing here looks at a process. */
#include "helper-runtime-record.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include "lcvm-safe-io.h"
#include "lcvm-validate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNTIME_MODE    0700
#define RECORD_GROUP    "vm"
#define RECORD_MAX_SIZE (1024 * 1024)

void
helper_record_free(HelperRecord *record)
{
  if (record == NULL)
    return;
  g_free(record->name);
  g_strfreev(record->argv);
  helper_reservation_free(record->reservation);
  g_strfreev(record->forwards);
  g_strfreev(record->dev_nodes);
  g_free(record->compose_hash);
  g_free(record->os_image_hash);
  g_free(record->qemu_version);
  g_strfreev(record->bridge_argv);
  g_free(record);
}

/* ---- runtime_dir/NAME ---- */

static gboolean
errno_error(GError **error, const char *what, const char *path)
{
  int err = errno;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s %s: %s", what, path, g_strerror(err));
  return FALSE;
}

static gboolean
check_private(int fd, const char *path, GError **error)
{
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_uid == 0 && (st.st_mode & 0077) == 0)
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "refusing %s: it must be a directory only root can use (root-owned, mode 0700); "
              "only lium-cvm-helper writes there",
              path);
  return FALSE;
}

static int
open_private_dir(int at, const char *name, const char *path, gboolean create, GError **error)
{
  if (create && mkdirat(at, name, RUNTIME_MODE) < 0 && errno != EEXIST) {
    errno_error(error, "cannot create", path);
    return -1;
  }
  lcvm_autofd int fd = lcvm_open_dir_at(at, name, error);
  if (fd >= 0 && !check_private(fd, path, error))
    return -1;
  return lcvm_steal_fd(&fd);
}

int
helper_runtime_dir_open(const LcvmConfig *config, const char *name, gboolean create, GError **error)
{
  if (!lcvm_vm_name_valid(name, error))
    return -1;
  lcvm_autofd int top =
      open_private_dir(AT_FDCWD, config->runtime_dir, config->runtime_dir, create, error);
  if (top < 0)
    return -1;
  g_autofree char *path = lcvm_layout_runtime_dir(config, name, NULL);
  return open_private_dir(top, name, path, create, error);
}

char *
helper_runtime_path(const LcvmConfig *config, const char *name, const char *file)
{
  return lcvm_layout_runtime_file(config, name, file, NULL);
}

gboolean
helper_runtime_remove(const LcvmConfig *config, const char *name, GError **error)
{
  lcvm_autofd int top = lcvm_open_dir_at(AT_FDCWD, config->runtime_dir, NULL);
  return top < 0 || lcvm_remove_tree_at(top, name, error);
}

/* Whether entry e of dir is a VM's directory (holding the regular file with_file, if set). */
static gboolean
is_vm_dir(DIR *dir, const struct dirent *e, const char *with_file)
{
  if (!lcvm_vm_name_valid(e->d_name, NULL))
    return FALSE;
  if (with_file == NULL)
    return e->d_type == DT_DIR;
  g_autofree char *path = g_build_filename(e->d_name, with_file, NULL);
  struct stat st;
  return fstatat(dirfd(dir), path, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

GStrv
helper_runtime_names(const LcvmConfig *config)
{
  g_auto(GStrv) all = helper_vm_dir_names(config->runtime_dir, NULL);
  g_autoptr(GStrvBuilder) vms = g_strv_builder_new();
  for (guint i = 0; all[i] != NULL; i++)
    if (!g_str_equal(all[i], LCVM_RUNTIME_VFIO_DIR)) /* the vfio records, never a VM */
      g_strv_builder_add(vms, all[i]);
  return g_strv_builder_end(vms);
}

GStrv
helper_vm_dir_names(const char *path, const char *with_file)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
  lcvm_autofd int fd = lcvm_open_dir_at(AT_FDCWD, path, NULL);
  DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
  if (dir != NULL)
    lcvm_steal_fd(&fd); /* closedir closes it */
  for (struct dirent *e = dir ? readdir(dir) : NULL; e != NULL; e = readdir(dir))
    if (is_vm_dir(dir, e, with_file))
      g_ptr_array_add(names, g_strdup(e->d_name));
  if (dir != NULL)
    closedir(dir);
  g_ptr_array_add(names, NULL);
  return (GStrv)g_ptr_array_free(g_steal_pointer(&names), FALSE);
}

/* ---- the record ---- */

static void
set_strv(GKeyFile *kf, const char *key, GStrv values)
{
  static const char *const none[] = { NULL };
  const char *const *v = values ? (const char *const *)values : none;
  g_key_file_set_string_list(kf, RECORD_GROUP, key, v, g_strv_length((GStrv)v));
}

static void
set_u64(GKeyFile *kf, const char *key, guint64 value)
{
  g_key_file_set_uint64(kf, RECORD_GROUP, key, value);
}

gboolean
helper_record_write(const LcvmConfig *config, const HelperRecord *r, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  const HelperReservation *res = r->reservation;
  g_key_file_set_string(kf, RECORD_GROUP, "name", r->name);
  set_u64(kf, "pid", (guint64)r->pid);
  set_u64(kf, "start_time", r->start_time);
  set_u64(kf, "started_at", r->started_at);
  set_strv(kf, "argv", r->argv);
  set_u64(kf, "qemu_uid", res->qemu_uid);
  set_u64(kf, "bridge_uid", res->bridge_uid);
  set_u64(kf, "cid", res->cid);
  set_u64(kf, "hostapi_port", res->hostapi_port);
  set_strv(kf, "devices", res->devices);
  set_strv(kf, "ports", res->ports);
  set_strv(kf, "forwards", r->forwards);
  set_strv(kf, "dev_nodes", r->dev_nodes);
  g_key_file_set_string(kf, RECORD_GROUP, "compose_hash", r->compose_hash);
  g_key_file_set_string(kf, RECORD_GROUP, "os_image_hash", r->os_image_hash);
  g_key_file_set_string(kf, RECORD_GROUP, "qemu_version", r->qemu_version);
  set_u64(kf, "bridge_pid", (guint64)r->bridge_pid);
  set_u64(kf, "bridge_start_time", r->bridge_start_time);
  set_strv(kf, "bridge_argv", r->bridge_argv);
  gsize len = 0;
  g_autofree char *text = g_key_file_to_data(kf, &len, NULL);
  lcvm_autofd int fd = helper_runtime_dir_open(config, r->name, TRUE, error);
  return fd >= 0 && lcvm_write_file_atomic_at(fd, LCVM_RUNTIME_RECORD, text, len, 0600, error);
}

static gboolean
get_u64(GKeyFile *kf, const char *key, guint64 max, guint64 *out, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *text = g_key_file_get_value(kf, RECORD_GROUP, key, &local);
  if (text != NULL && g_ascii_string_to_unsigned(text, 10, 0, max, out, &local))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "runtime record: bad %s: %s", key,
              local ? local->message : "missing");
  return FALSE;
}

/* A missing list is an empty one (GKeyFile writes an empty list as an empty value). */
static gboolean
get_strv(GKeyFile *kf, const char *key, GStrv *out, GError **error)
{
  *out = g_key_file_get_string_list(kf, RECORD_GROUP, key, NULL, NULL);
  if (*out == NULL)
    *out = g_new0(char *, 1);
  return TRUE;
}

static gboolean
get_string(GKeyFile *kf, const char *key, char **out, GError **error)
{
  *out = g_key_file_get_string(kf, RECORD_GROUP, key, NULL);
  if (*out != NULL)
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "runtime record: no %s", key);
  return FALSE;
}

static gboolean
parse_reservation(GKeyFile *kf, HelperReservation *res, GError **error)
{
  guint64 qemu_uid, bridge_uid, cid, port;
  if (!get_u64(kf, "qemu_uid", G_MAXUINT32 - 1, &qemu_uid, error) ||
      !get_u64(kf, "bridge_uid", G_MAXUINT32 - 1, &bridge_uid, error) ||
      !get_u64(kf, "cid", G_MAXUINT32, &cid, error) ||
      !get_u64(kf, "hostapi_port", G_MAXUINT16, &port, error) ||
      !get_strv(kf, "devices", &res->devices, error) || !get_strv(kf, "ports", &res->ports, error))
    return FALSE;
  if (qemu_uid == 0 || bridge_uid == 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "runtime record: uid 0 is never a VM's");
    return FALSE;
  }
  res->qemu_uid = (uid_t)qemu_uid;
  res->bridge_uid = (uid_t)bridge_uid;
  res->cid = (guint)cid;
  res->hostapi_port = (guint16)port;
  return TRUE;
}

/* A record without a bridge (pid 0) is valid: the helper starts one when it re-adopts. */
static gboolean
parse_bridge(GKeyFile *kf, HelperRecord *r, GError **error)
{
  guint64 pid = 0;
  if (g_key_file_has_key(kf, RECORD_GROUP, "bridge_pid", NULL) &&
      (!get_u64(kf, "bridge_pid", G_MAXINT32, &pid, error) ||
       !get_u64(kf, "bridge_start_time", G_MAXUINT64, &r->bridge_start_time, error)))
    return FALSE;
  get_strv(kf, "bridge_argv", &r->bridge_argv, error);
  if (pid == 1 || (pid != 0 && r->bridge_argv[0] == NULL)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "runtime record: a bad bridge process");
    return FALSE;
  }
  r->bridge_pid = (pid_t)pid;
  return TRUE;
}

static gboolean
parse_record(GKeyFile *kf, HelperRecord *r, GError **error)
{
  guint64 pid = 0;
  r->reservation = g_new0(HelperReservation, 1);
  if (!get_string(kf, "name", &r->name, error) || !get_u64(kf, "pid", G_MAXINT32, &pid, error) ||
      !get_u64(kf, "start_time", G_MAXUINT64, &r->start_time, error) ||
      !get_u64(kf, "started_at", G_MAXUINT64, &r->started_at, error) ||
      !get_strv(kf, "argv", &r->argv, error) || !parse_reservation(kf, r->reservation, error) ||
      !get_strv(kf, "forwards", &r->forwards, error) ||
      !get_strv(kf, "dev_nodes", &r->dev_nodes, error) ||
      !get_string(kf, "compose_hash", &r->compose_hash, error) ||
      !get_string(kf, "os_image_hash", &r->os_image_hash, error) ||
      !get_string(kf, "qemu_version", &r->qemu_version, error))
    return FALSE;
  if (!parse_bridge(kf, r, error))
    return FALSE;
  if (pid <= 1 || r->argv[0] == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "runtime record: no process");
    return FALSE;
  }
  r->pid = (pid_t)pid;
  return TRUE;
}

HelperRecord *
helper_record_load(const LcvmConfig *config, const char *name, GError **error)
{
  lcvm_autofd int fd = helper_runtime_dir_open(config, name, FALSE, error);
  if (fd < 0)
    return NULL;
  g_autofree char *text = NULL;
  gsize len = 0;
  if (!lcvm_read_file_at(fd, LCVM_RUNTIME_RECORD, RECORD_MAX_SIZE, &text, &len, error))
    return NULL;
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autoptr(HelperRecord) r = g_new0(HelperRecord, 1);
  if (!g_key_file_load_from_data(kf, text, len, G_KEY_FILE_NONE, error) ||
      !parse_record(kf, r, error)) {
    g_prefix_error(error, "VM %s: ", name);
    return NULL;
  }
  if (!g_str_equal(r->name, name)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s: its runtime record names %s", name,
                r->name);
    return NULL;
  }
  return g_steal_pointer(&r);
}
