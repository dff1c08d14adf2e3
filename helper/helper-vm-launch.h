/* SPDX-License-Identifier: MIT */
/* What a VM's start does on the host and what its stop undoes, callable without a bus
 * (helper-vm-launch.c). The rest of running VMs: helper-manager.c is the bus side
 * (Manager.StartVm/StopVm/RemoveVm/ListVms), helper-vm.c the Vm objects and supervision
 * (helper-vm.h), helper-readopt.c the re-adoption.
 *
 *   launch:  validate (helper-instance) → reserve (helper-alloc) → instance assembly →
 *            fds (QMP listening socket, serial.log, qemu.log, disks) → loopback guard →
 *            device nodes to the QEMU uid → shared/ opened to the bridge uid → host-API
 *            bridge spawned (helper-bridge) → confined QEMU spawn → runtime record
 *   release: loopback guard removed, device nodes and instance files back to root,
 *            reservations freed, runtime_dir/NAME removed (the caller has stopped the
 *            bridge before: helper_bridge_stop)
 *
 * A launch that fails at any step releases what it took before returning. */
#pragma once
#include "helper-alloc.h"
#include "helper-process.h"
#include "lcvm-config.h"
#include "lcvm-layout.h"

/* Besides the instance assembly (helper-instance), a launch opens two files of
 * state_dir/instances/NAME: the guest's console (LCVM_INSTANCE_SERIAL_LOG) and QEMU's own
 * stdout/stderr (LCVM_INSTANCE_QEMU_LOG), both root:lium-cvm 0640 so operators read them
 * (`lium-cvm logs`), both written by QEMU through O_APPEND fds the helper opened. */

/* Takes the locks of the devices slots for the whole launch (FALSE with error set when one is
 * held); whoever passed it releases them once the launch returned. */
typedef gboolean (*HelperDeviceLocker)(gpointer data, const char *const *slots, GError **error);

/* Spawns VM name's bridge and QEMU. The devices of its definition are locked through lock
 * before anything is validated, so no GPU job can change them during the launch. On success
 * returns its runtime record (already written), a pidfd of QEMU in *pidfd and one of the bridge
 * in *bridge_pidfd; *exec_us (may be NULL) gets the time spent until QEMU exec'd. */
HelperRecord *helper_vm_launch(const LcvmConfig *config, HelperAlloc *alloc, const char *name,
                               HelperDeviceLocker lock, gpointer lock_data, int *pidfd,
                               int *bridge_pidfd, gint64 *exec_us, GError **error);

/* Gives back everything record's launch took (never fails: what cannot be undone is logged).
 * QEMU must be gone. */
void helper_vm_release(const LcvmConfig *config, HelperAlloc *alloc, const HelperRecord *record);

/* Removes state_dir/instances/NAME whole (NOT_FOUND when there is none). The caller makes
 * sure the VM does not run. */
gboolean helper_vm_remove_instance(const LcvmConfig *config, const char *name, GError **error);

/* The last lines (at most max_lines) this start's QEMU wrote to file of the instance
 * (LCVM_INSTANCE_QEMU_LOG for BootError, LCVM_INSTANCE_SERIAL_LOG for a crash's console lines):
 * raw bytes, which for the console the guest wrote. */
char *helper_vm_log_tail(const LcvmConfig *config, const char *name, const char *file,
                         guint max_lines);

/* state_dir/instances/NAME, reached without following a symlink; -1 when absent. */
int helper_vm_instance_dir_open(const LcvmConfig *config, const char *name, GError **error);
