/* SPDX-License-Identifier: MIT */
/* A VM's host-API bridge, lium-cvm-hostapi (DESIGN §2, §5): spawned before its QEMU, confined
 * like it (its own uid from the VM's reservation, no capabilities, the bridge seccomp
 * profile), and given everything as fds — the loopback TCP socket the helper binds on the VM's
 * host-API port, the instance's shared/ directory (for .instance_info) and the event file
 * runtime_dir/NAME/events (O_APPEND; root-owned, only the helper reads it) — and a stderr that
 * reaches the journal (its own stream, SYSLOG_IDENTIFIER lium-cvm-hostapi@NAME; the helper's
 * stderr when no journal runs). It lives and dies
 * with its VM: stopped once QEMU is gone, re-adopted with it after a helper restart, and
 * restarted by the helper when it exits while QEMU runs (helper-vm.c). Never runs as root,
 * never gets a path. */
#pragma once
#include <glib.h>
#include <sys/types.h>

#include "helper-alloc.h"
#include "helper-runtime-record.h"
#include "lcvm-config.h"

typedef struct {
  pid_t pid;
  int pidfd;
  guint64 start_time; /* /proc/PID/stat field 22 */
  GStrv argv;
} HelperBridge;

/* Frees argv and closes pidfd; the process is not touched. */
void helper_bridge_clear(HelperBridge *bridge);

/* The spawned bridge of VM name serves 127.0.0.1:res->hostapi_port and accepts only
 * connections from res->qemu_uid; it runs as res->bridge_uid. The instance's shared/ must be
 * writable by the bridge uid (helper_bridge_share). */
gboolean helper_bridge_spawn(const LcvmConfig *config, const char *name,
                             const HelperReservation *res, HelperBridge *out, GError **error);

/* shared/ of instance_fd becomes qemu_uid:bridge_gid 02770, so the bridge can write
 * .instance_info (mode 0644, readable by QEMU) while nobody else can enter it. */
gboolean helper_bridge_share(int instance_fd, const char *name, const HelperReservation *res,
                             GError **error);

/* A pidfd for the recorded bridge when it still is that process; -1 otherwise (none
 * recorded, gone, or its pid reused). */
int helper_bridge_adopt(const HelperRecord *record, GError **error);

/* SIGTERM, then SIGKILL when it has not exited within a second; reaps it when it is the
 * helper's child. Returns how it ended ("exited", "killed", ...). pidfd stays open. */
char *helper_bridge_stop(int pidfd);

/* How an exited bridge ended, reaping it when it is the helper's child. */
char *helper_bridge_exit_how(int pidfd);
