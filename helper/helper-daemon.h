/* SPDX-License-Identifier: MIT */
/* The helper's process-wide state: configuration, bus connection, polkit authority, what VMs
 * hold (the allocator), the lock table and the activity count that drives the idle exit.
 * Main-thread only, except where a function says otherwise. */
#pragma once
#include "helper-alloc.h"
#include "lcvm-config.h"
#include <gio/gio.h>
#include <polkit/polkit.h>

typedef struct {
  LcvmConfig *config;
  GDBusConnection *bus;
  PolkitAuthority *authority;
  GMainLoop *loop;
  HelperAlloc *alloc;     /* what the running VMs hold; thread-safe */
  struct _HelperVms *vms; /* the VMs' objects (helper-vm.c) */
  GHashTable *locks;      /* key → owning operation; under locks_mutex */
  GMutex locks_mutex;     /* the lock table is also taken from VM starts' worker threads */
  guint next_job_id;
  guint busy; /* running jobs and calls; the helper never idles out while > 0 */
  guint idle_source;
} HelperDaemon;

/* Device ownership, one model for GPU jobs and VMs. A device (GPU or NVSwitch) is owned
 *  - by an operation while it runs: its lock "device:DDDD:BB:DD.F" (GPU jobs: bind, unbind,
 *    mode, reset, query; a VM start, as "start of VM NAME", for its whole launch, taken before
 *    the definition is validated);
 *  - by a VM from its reservation (taken during the launch) until its devices are released
 *    after QEMU is gone (d->alloc, the same key "device:SLOT" → VM).
 * helper_lock_acquire refuses a device a VM holds (LCVM_ERROR_DEVICE_IN_USE naming the VM) and
 * a key an operation holds (LCVM_ERROR_BUSY naming the operation), so neither side can take a
 * device from the other. VM locks are "vm:NAME". All-or-nothing; thread-safe. */
#define HELPER_DEVICE_LOCK_PREFIX HELPER_ALLOC_DEVICE
char *helper_device_lock_key(const char *slot);
gboolean helper_lock_acquire(HelperDaemon *d, const char *const *keys, const char *operation,
                             GError **error);
void helper_lock_release(HelperDaemon *d, const char *const *keys);
gboolean helper_lock_held(HelperDaemon *d, const char *key);

/* Activity: hold while something runs; release re-arms the idle timer. */
void helper_daemon_hold(HelperDaemon *d);
void helper_daemon_release(HelperDaemon *d);
/* Thread-safe: note that a call arrived (re-arms the idle timer from any thread). */
void helper_daemon_touch(HelperDaemon *d);

/* The state of a helper that has not yet exported anything: config (taken), the lock table,
 * the allocator with the uid cursor a previous helper left, the main loop. */
void helper_daemon_init(HelperDaemon *d, LcvmConfig *config);
/* Exports the helper's objects: Host and Manager (helper-dispatch.c), then the VMs' objects
 * and the re-adoption of the VMs a previous helper left running (helper-readopt.c). */
gboolean helper_daemon_export(HelperDaemon *d, GError **error);
