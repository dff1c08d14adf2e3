/* SPDX-License-Identifier: MIT */
/* What lets a VM outlive the helper: its runtime record in runtime_dir/NAME/ (root, 0700)
 * — QEMU's pid, its start time (field 22 of /proc/PID/stat), its argv, its uids and
 * reservations — written right after the spawn. Restarting the helper never kills a VM: it
 * reads the records back and re-adopts what still runs (helper-process.h proves a recorded
 * pid still is that process). A record is read back as untrusted text. */
#pragma once
#include <glib.h>
#include <sys/types.h>

#include "helper-alloc.h"
#include "lcvm-config.h"
#include "lcvm-layout.h"

typedef struct {
  char *name;
  pid_t pid;
  guint64 start_time; /* clock ticks after boot, /proc/PID/stat field 22 */
  guint64 started_at; /* unix seconds */
  GStrv argv;
  HelperReservation *reservation;
  GStrv forwards;  /* PROTOCOL:ADDRESS:HOST_PORT:GUEST_PORT */
  GStrv dev_nodes; /* device nodes handed to the QEMU uid, to give back to root */
  char *compose_hash;
  char *os_image_hash;
  char *qemu_version;
  /* The VM's host-API bridge (helper-bridge.h); pid 0 when none runs. */
  pid_t bridge_pid;
  guint64 bridge_start_time;
  GStrv bridge_argv;
} HelperRecord;

void helper_record_free(HelperRecord *record);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperRecord, helper_record_free)

/* runtime_dir/NAME, created (with runtime_dir) root-owned 0700 when create is set; opened
 * O_NOFOLLOW. Returns the directory fd. */
int helper_runtime_dir_open(const LcvmConfig *config, const char *name, gboolean create,
                            GError **error);
/* runtime_dir/NAME/FILE (lcvm_layout_runtime_file); NULL when name is not a valid VM name. */
char *helper_runtime_path(const LcvmConfig *config, const char *name, const char *file);

gboolean helper_record_write(const LcvmConfig *config, const HelperRecord *record, GError **error);
HelperRecord *helper_record_load(const LcvmConfig *config, const char *name, GError **error);
/* Removes runtime_dir/NAME whole (record and QMP socket); succeeds when it is absent. */
gboolean helper_runtime_remove(const LcvmConfig *config, const char *name, GError **error);
/* The VM names that have a directory in runtime_dir (not runtime_dir/vfio, the vfio records). */
GStrv helper_runtime_names(const LcvmConfig *config);
/* The VM names that have a directory in path (never followed), holding the regular file
 * with_file when it is not NULL. */
GStrv helper_vm_dir_names(const char *path, const char *with_file);
