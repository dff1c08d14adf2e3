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
  GHashTable *locks;        /* key → owning operation */
  guint next_job_id;
  guint busy; /* running jobs and calls; the helper never idles out while > 0 */
  guint idle_source;
} HelperDaemon;

/* Locks: one per device ("gpu:DDDD:BB:DD.F") or VM ("vm:NAME"). All-or-nothing; a held key
 * fails with LCVM_ERROR_BUSY naming the operation that holds it. */
gboolean helper_lock_acquire(HelperDaemon *d, const char *const *keys, const char *operation,
                             GError **error);
void helper_lock_release(HelperDaemon *d, const char *const *keys);

/* The VM that holds device slot (reserved from its start until its devices are restored),
 * or NULL (helper-vm.c). helper_lock_acquire refuses a "gpu:SLOT" key such a VM holds. */
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
