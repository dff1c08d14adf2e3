/* SPDX-License-Identifier: MIT */
/* How a VM is named on the bus, for the helper that exports it and the frontend that reads
 * it: its object path and its states. One place, so the two sides cannot disagree. */
#pragma once
#include <glib.h>

/* The states of the Vm interface's State property. */
#define LCVM_VM_DEFINED  "defined"
#define LCVM_VM_STARTING "starting"
#define LCVM_VM_RUNNING  "running"
#define LCVM_VM_STOPPING "stopping"
#define LCVM_VM_STOPPED  "stopped"
#define LCVM_VM_FAILED   "failed"

/* StopVm flags. */
#define LCVM_STOP_FORCE (1u << 0)

/* /io/lium/Cvm1/vms/ + the name escaped for an object path (g_dbus_escape_object_path:
 * "vm-1" → "vm_2d1"). name must be a valid VM name. */
char *lcvm_vm_object_path(const char *name);

/* Whether QEMU may be alive in this state (starting, running, stopping). */
gboolean lcvm_vm_state_is_live(const char *state);
