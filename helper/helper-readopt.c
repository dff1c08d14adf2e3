/* SPDX-License-Identifier: MIT */
/* Re-adoption: at start the helper takes over the VMs a previous helper left running (their
 * runtime records), claims again what they hold, watches them as if it had started them, and
 * shows the VMs that ended while no helper watched as failed. Never kills a VM it cannot
 * account for: that one is reported, not destroyed. */
#include "helper-readopt.h"
#include "helper-bridge.h"
#include "helper-crash.h"
#include "helper-vm-launch.h"
#include "helper-vm.h"
#include "lcvm-fd.h"
#include "lcvm-names.h"
#include "lcvm-vm-object.h"

/* A record whose QEMU is gone (or is not the recorded one): its VM failed while no helper
 * watched; what it held is given back now. */
static void
readopt_dead(HelperVms *vms, HelperVm *vm, const HelperRecord *record, const char *why)
{
  const LcvmConfig *config = vms->daemon->config;
  g_message("VM %s: not re-adopted: %s", vm->name, why);
  lcvm_autofd int bridge = record != NULL ? helper_bridge_adopt(record, NULL) : -1;
  if (bridge >= 0)
    g_free(helper_bridge_stop(bridge));
  if (record != NULL)
    helper_vm_release(config, vms->daemon->alloc, record);
  else
    helper_runtime_remove(config, vm->name, NULL);
  g_autofree char *message =
      g_strdup_printf("QEMU ended while the helper was not running (%s)", why);
  g_autoptr(HelperCrash) crash = helper_crash_new(config, vm->name, message);
  helper_crash_report(config, crash);
  lcvm_dbus_vm_set_boot_error(vm->skeleton, message);
  helper_vm_show_crash(vm, crash);
  helper_vm_set_state(vm, LCVM_VM_FAILED);
}

static void
readopt(HelperVms *vms, const char *name)
{
  g_autoptr(GError) error = NULL;
  HelperVm *vm = helper_vms_get(vms, name, &error);
  if (vm == NULL) {
    g_warning("VM %s: cannot export its object: %s", name, error->message);
    return;
  }
  g_autoptr(HelperRecord) record = helper_record_load(vms->daemon->config, name, &error);
  lcvm_autofd int pidfd = record ? helper_process_adopt(record, &error) : -1;
  if (pidfd >= 0 && !helper_alloc_claim(vms->daemon->alloc, name, record->reservation, &error)) {
    /* Never kill it: a VM the helper cannot account for is reported, not destroyed. */
    g_warning("VM %s: QEMU (pid %d) runs but cannot be re-adopted: %s", name, (int)record->pid,
              error->message);
    lcvm_dbus_vm_set_boot_error(vm->skeleton, error->message);
    helper_vm_set_state(vm, LCVM_VM_FAILED);
    return;
  }
  if (pidfd < 0) {
    readopt_dead(vms, vm, record, error->message);
    return;
  }
  g_message("VM %s: re-adopted QEMU (pid %d)", name, (int)record->pid);
  g_autoptr(GError) bridge_error = NULL;
  int bridge = helper_bridge_adopt(record, &bridge_error);
  lcvm_dbus_vm_set_boot_progress(vm->skeleton, "re-adopted after a helper restart");
  helper_vm_supervise(vm, g_steal_pointer(&record), lcvm_steal_fd(&pidfd), bridge);
  if (bridge < 0) {
    g_autofree char *why = g_strdup_printf("was not running when the helper re-adopted the VM (%s)",
                                           bridge_error->message);
    helper_vm_restart_bridge(vm, why);
  }
  helper_vm_set_state(vm, LCVM_VM_STARTING);
  helper_vm_check_qmp(vm);
}

/* A crash recorded by an earlier helper stays visible (never restarted). */
static void
show_recorded_crash(HelperVms *vms, const char *name)
{
  g_autoptr(HelperCrash) crash =
      helper_vms_lookup(vms, name) ? NULL : helper_crash_load(vms->daemon->config, name);
  g_autoptr(GError) error = NULL;
  HelperVm *vm = crash ? helper_vms_get(vms, name, &error) : NULL;
  if (vm == NULL)
    return;
  helper_vm_show_crash(vm, crash);
  helper_vm_set_state(vm, LCVM_VM_FAILED);
}

gboolean
helper_readopt(HelperDaemon *d, GError **error)
{
  HelperVms *vms = d->vms;
  g_auto(GStrv) names = helper_runtime_names(d->config);
  for (guint i = 0; names[i] != NULL; i++)
    readopt(vms, names[i]);
  g_auto(GStrv) crashed = helper_crash_names(d->config);
  for (guint i = 0; crashed[i] != NULL; i++)
    show_recorded_crash(vms, crashed[i]);
  return TRUE;
}
