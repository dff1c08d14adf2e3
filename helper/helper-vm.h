/* SPDX-License-Identifier: MIT */
/* The VMs the helper knows, one io.lium.Cvm1.Vm object each, and the life of each VM's QEMU
 * while the helper watches it: its exit, its host-API bridge, the guest's events and the QMP
 * check that turns "starting" into "running" (helper-vm.c). State lives in the main thread.
 * A VM is "stopped" only once its QEMU is gone and everything its launch took was given back
 * (helper_vm_release). Nothing here ever kills a VM because the helper itself stops. The
 * Manager's methods (helper-manager.c) and the re-adoption (helper-readopt.c) use it. */
#pragma once
#include "helper-crash.h"
#include "helper-daemon.h"
#include "helper-process.h"
#include "lcvm-dbus-generated.h"

typedef struct _HelperVms {
  HelperDaemon *daemon;
  GHashTable *by_name; /* name → HelperVm (reference) */
} HelperVms;

/* One VM. Refcounted (GRcBox): worker threads keep it alive. Fields marked main are only
 * touched in the main thread. */
typedef struct {
  HelperVms *vms;
  char *name;
  char *path;
  LcvmDbusVm *skeleton;         /* main */
  HelperRecord *record;         /* main; while QEMU may live */
  int pidfd;                    /* main; -1 when none */
  guint watch;                  /* main */
  guint generation;             /* main; one per launch */
  gboolean held;                /* main; the daemon is held while QEMU lives */
  int bridge_pidfd;             /* main; the host-API bridge, -1 when none runs */
  guint bridge_watch;           /* main */
  guint respawns;               /* main; bridge restarts in this VM life */
  struct _HelperEvents *events; /* main; the guest's Notify events, while QEMU lives */
  gboolean guest_spoke;         /* main; the guest sent a boot.progress in this VM life */
  gboolean announced;           /* main; the guest sent shutdown.progress in this VM life */
  gint stop_step;               /* atomic HelperStopStep */
  GMutex lock;                  /* guards released_generation and exit_how */
  GCond released;               /* signalled once a launch's QEMU is gone and released */
  guint released_generation;
  char *exit_how;
} HelperVm;

/* d->vms, empty. */
HelperVms *helper_vms_new(HelperDaemon *d);
HelperVm *helper_vms_lookup(HelperVms *vms, const char *name);
/* The VM's object, exported on first use with State "defined". */
HelperVm *helper_vms_get(HelperVms *vms, const char *name, GError **error);
/* The VMs whose QEMU may live (supervised or being released). */
GStrv helper_vms_live_names(HelperDaemon *d);

HelperVm *helper_vm_ref(HelperVm *vm);
void helper_vm_unref(HelperVm *vm);
const char *helper_vm_state(HelperVm *vm);
void helper_vm_flush(HelperVm *vm);
void helper_vm_set_state(HelperVm *vm, const char *state);
/* The VM leaves the bus now, even while a job or a watch still holds it: a new start of the
 * same name exports a new object at the same path. */
void helper_vm_forget(HelperVm *vm);

/* QEMU runs: watch its exit and its bridge's, follow the guest's events and keep the helper
 * from idling out. bridge_pidfd -1: no bridge runs (re-adoption found it gone). */
void helper_vm_supervise(HelperVm *vm, HelperRecord *record, int pidfd, int bridge_pidfd);
/* Asks QEMU's run state over QMP (a worker thread): "starting" becomes "running". */
void helper_vm_check_qmp(HelperVm *vm);
/* The bridge is gone while QEMU runs (why says how): BootError says so; a new one is started
 * unless it keeps dying. */
void helper_vm_restart_bridge(HelperVm *vm, const char *why);
/* An unexpected end: visible on the object (UnexpectedExit, ConsoleTail, ExitStatus). */
void helper_vm_show_crash(HelperVm *vm, const HelperCrash *crash);
/* Any thread: waits (at most timeout_ms) until launch generation's QEMU is gone and released;
 * *how (set either way) says how it ended. */
gboolean helper_vm_wait_released(HelperVm *vm, guint generation, guint timeout_ms, char **how);
