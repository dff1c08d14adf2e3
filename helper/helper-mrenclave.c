/* SPDX-License-Identifier: MIT */
/* MRENCLAVE tracking and the start-time check (see the header). */
#include "helper-mrenclave.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "lcvm-layout.h"
#include "lcvm-mrenclave.h"
#include "lcvm-safe-io.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_MODE 0644

static char *
read_record(int dirfd, const char *file)
{
  return dirfd < 0 ? NULL : lcvm_mrenclave_read_at(dirfd, file);
}

static gboolean
write_record(int dirfd, const char *file, const char *mrenclave, GError **error)
{
  g_autofree char *text = g_strdup_printf("%s\n", mrenclave);
  return lcvm_write_file_atomic_at(dirfd, file, text, strlen(text), RECORD_MODE, error);
}

/* state_dir/instances/NAME, or -1. */
static int
open_instance(const LcvmConfig *config, const char *name)
{
  g_autofree char *path = lcvm_layout_instances_dir(config);
  lcvm_autofd int instances = lcvm_open_dir_at(AT_FDCWD, path, NULL);
  if (instances < 0)
    return -1;
  int fd = lcvm_open_dir_at(instances, name, NULL);
  return fd;
}

/* The last recorded MRENCLAVE of the running key provider, or NULL. */
static char *
helper_mrenclave_current(const LcvmConfig *config)
{
  lcvm_autofd int state = lcvm_open_dir_at(AT_FDCWD, config->state_dir, NULL);
  char *value = read_record(state, LCVM_KEY_PROVIDER_MRENCLAVE_FILE);
  return value;
}

char *
helper_mrenclave_observe(const LcvmConfig *config, const char *logs)
{
  g_autofree char *seen = logs ? lcvm_mrenclave_from_logs(logs) : NULL;
  g_autofree char *recorded = helper_mrenclave_current(config);
  if (seen == NULL)
    return g_steal_pointer(&recorded);
  if (g_strcmp0(seen, recorded) != 0) {
    lcvm_autofd int state = lcvm_open_dir_at(AT_FDCWD, config->state_dir, NULL);
    g_autoptr(GError) error = NULL;
    if (state < 0 || !write_record(state, LCVM_KEY_PROVIDER_MRENCLAVE_FILE, seen, &error))
      g_warning("cannot record the key provider's MRENCLAVE in %s: %s", config->state_dir,
                error ? error->message : "no state directory");
  }
  return g_steal_pointer(&seen);
}

gboolean
helper_mrenclave_check(const LcvmConfig *config, const char *name, gboolean *had_disk,
                       GError **error)
{
  lcvm_autofd int dir = open_instance(config, name);
  struct stat st;
  *had_disk = dir >= 0 && fstatat(dir, LCVM_INSTANCE_DATA_DISK, &st, AT_SYMLINK_NOFOLLOW) == 0;
  g_autofree char *disk = read_record(dir, LCVM_INSTANCE_MRENCLAVE_FILE);
  g_autofree char *current = helper_mrenclave_current(config);
  if (!*had_disk || disk == NULL || current == NULL || g_str_equal(disk, current))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "refusing to start VM %s: its data disk was made with the key provider whose "
              "MRENCLAVE is %s, but the key provider now runs MRENCLAVE %s. Its sealing key "
              "differs, so the guest could not open the disk and would loop on 'Failed to open "
              "encrypted data disk'. Run the old key provider image again ('lium-cvm "
              "key-provider status' shows the pinned images), or give the VM up: 'lium-cvm rm "
              "%s', then 'lium-cvm new %s' (the disk's data is lost)",
              name, disk, current, name, name);
  return FALSE;
}

GPtrArray *
helper_mrenclave_mismatched(const LcvmConfig *config, GPtrArray *disks, const char *current)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; current != NULL && i < disks->len; i++) {
    lcvm_autofd int dir = open_instance(config, disks->pdata[i]);
    g_autofree char *disk = read_record(dir, LCVM_INSTANCE_MRENCLAVE_FILE);
    if (disk != NULL && !g_str_equal(disk, current))
      g_ptr_array_add(out, g_strdup_printf("%s (%s)", (char *)disks->pdata[i], disk));
  }
  return out;
}

void
helper_mrenclave_record_disk(const LcvmConfig *config, const char *name, gboolean had_disk)
{
  if (had_disk)
    return;
  g_autofree char *current = helper_mrenclave_current(config);
  lcvm_autofd int dir = current ? open_instance(config, name) : -1;
  struct stat st;
  g_autoptr(GError) error = NULL;
  if (dir >= 0 && fstatat(dir, LCVM_INSTANCE_DATA_DISK, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
      !write_record(dir, LCVM_INSTANCE_MRENCLAVE_FILE, current, &error))
    g_warning("VM %s: cannot record its key provider's MRENCLAVE: %s", name, error->message);
}
