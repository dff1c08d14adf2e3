/* SPDX-License-Identifier: MIT */
/* The helper's process-wide state: configuration, bus connection, polkit authority, the
 * lock table and the activity count that drives the idle exit. Main-thread only, except
 * where a function says otherwise. */
#pragma once
#include "lcvm-config.h"
#include "lcvm-dbus-generated.h"
#include <gio/gio.h>
#include <polkit/polkit.h>

typedef struct {
  LcvmConfig *config;
  GDBusConnection *bus;
  PolkitAuthority *authority;
  GMainLoop *loop;
  LcvmDbusHost *host;       /* skeleton on LCVM_OBJECT_PATH */
  LcvmDbusManager *manager; /* skeleton on LCVM_OBJECT_PATH */
  struct _HelperVms *vms;   /* the VMs and what they hold (helper-vm.c) */
  GHashTable *locks;        /* key → owning operation; under locks_mutex */
  GMutex locks_mutex;       /* the lock table is also taken from VM starts' worker threads */
  guint next_job_id;
  guint busy; /* running jobs and calls; the helper never idles out while > 0 */
  guint idle_source;
} HelperDaemon;

/* Device ownership, one model for GPU jobs and VMs. A device (GPU or NVSwitch) is owned
 *  - by an operation while it runs: its lock "device:DDDD:BB:DD.F" (GPU jobs: bind, unbind,
 *    mode, reset, query; a VM start, as "start of VM NAME", for its whole launch, taken before
 *    the definition is validated);
 *  - by a VM from its reservation (taken during the launch) until its devices are released
 *    after QEMU is gone (helper-alloc.c, "device:SLOT" → VM).
 * helper_lock_acquire refuses a device a VM holds (LCVM_ERROR_DEVICE_IN_USE naming the VM) and
 * a key an operation holds (LCVM_ERROR_BUSY naming the operation), so neither side can take a
 * device from the other. VM locks are "vm:NAME". All-or-nothing; thread-safe. */
#define HELPER_DEVICE_LOCK_PREFIX "device:"
char *helper_device_lock_key(const char *slot);
gboolean helper_lock_acquire(HelperDaemon *d, const char *const *keys, const char *operation,
                             GError **error);
void helper_lock_release(HelperDaemon *d, const char *const *keys);
gboolean helper_lock_held(HelperDaemon *d, const char *key);

/* The VM that holds device slot (reserved from its start until its devices are released), or
 * NULL (helper-vm.c). Thread-safe. */
char *helper_vms_device_holder(HelperDaemon *d, const char *slot);
/* The VMs whose QEMU may live (supervised or being released), main thread (helper-vm.c). */
GStrv helper_vms_live_names(HelperDaemon *d);

/* Activity: hold while something runs; release re-arms the idle timer. */
void helper_daemon_hold(HelperDaemon *d);
void helper_daemon_release(HelperDaemon *d);
/* Thread-safe: note that a call arrived (re-arms the idle timer from any thread). */
void helper_daemon_touch(HelperDaemon *d);

/* Runs func in a worker thread and replies to inv with its result (a tuple matching the
 * method's out signature, or NULL with error set) through helper_return_ok/_error, so the
 * call is audited. The daemon is held busy meanwhile. destroy frees data afterwards. */
typedef GVariant *(*HelperCallFunc)(HelperDaemon *d, gpointer data, GError **error);
void helper_call_in_thread(HelperDaemon *d, GDBusMethodInvocation *inv, HelperCallFunc func,
                           gpointer data, GDestroyNotify destroy);

/* Interfaces exported by the helper's parts. */
gboolean helper_host_export(HelperDaemon *d, GError **error);
gboolean helper_manager_export(HelperDaemon *d, GError **error);
/* StartVm/StopVm/RemoveVm/ListVms on d->manager, the Vm objects, and the re-adoption of the
 * VMs a previous helper left running (after helper_manager_export). */
gboolean helper_vm_export(HelperDaemon *d, GError **error);
