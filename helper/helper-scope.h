/* SPDX-License-Identifier: MIT */
/* Each VM in a cgroup of its own when systemd is PID 1: QEMU and its host-API bridge are moved
 * into a transient scope lium-cvm-vm-NAME.scope (systemd's StartTransientUnit), so
 * `systemctl status` shows them, CPU and memory are accounted per VM, and stopping or
 * restarting lium-cvm-helper.service can never take a VM down. Without systemd nothing
 * happens. */
#pragma once
#include <glib.h>
#include <sys/types.h>

/* Moves QEMU and the bridge (bridge_pid 0: QEMU alone) into the VM's scope. Best effort: a failure
 * is logged, never returned, because the VM runs either way. Blocking (a D-Bus round trip): call it
 * from a worker thread. */
void helper_scope_adopt(const char *name, pid_t qemu_pid, pid_t bridge_pid);
