/* SPDX-License-Identifier: MIT */
/* io.lium.Cvm1.Manager: the VMs, named by their definitions — the steps of DryRun, StartVm,
 * StopVm, RemoveVm and ListVms for the method table (helper-methods.c). The dispatcher already
 * authorized the call and checked its flags.
 *
 * DryRun runs the validation a start runs (helper-instance: the definition read without
 * following a symlink, limits, compose hash, image, QEMU, host CPUs and memory, devices,
 * ports) and answers with the argv a start would execute and every reason this host would
 * refuse it. It writes nothing, creates no disk and reserves nothing. StartVm launches in a
 * worker thread (helper-vm-launch.c) and answers once QEMU runs; StopVm is a Job
 * (helper-stop.c); the VM objects live in helper-vm.c. */
#include "helper-manager.h"
#include "helper-instance.h"
#include "helper-scope.h"
#include "helper-stop.h"
#include "helper-vm-launch.h"
#include "helper-vm.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"
#include "lcvm-names.h"
#include "lcvm-validate.h"
#include "lcvm-vm-object.h"

#include <fcntl.h>

#define STOP_DEFAULT_TIMEOUT_S 30
#define STOP_MAX_TIMEOUT_S     3600
#define RELEASE_WAIT_MS        30000

/* Every Manager method but ListVms names a VM as its first argument. */
static const char *
call_name(HelperCall *call)
{
  const char *name = NULL;
  g_variant_get_child(call->args, 0, "&s", &name);
  return name;
}

static gboolean
validate_name(HelperCall *call, GError **error)
{
  return lcvm_vm_name_valid(call_name(call), error);
}

GStrv
helper_manager_vm_locks(HelperCall *call)
{
  GStrv keys = g_new0(char *, 2);
  keys[0] = g_strdup_printf("vm:%s", call_name(call));
  return keys;
}

static gboolean
busy(HelperVm *vm, const char *what, GError **error)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_BUSY, "VM %s is %s; %s", vm->name, helper_vm_state(vm),
              what);
  return FALSE;
}

/* Refused (Busy) while VM name runs; hint says what to do. */
static gboolean
refuse_if_live(HelperDaemon *d, const char *name, const char *hint, GError **error)
{
  HelperVm *vm = helper_vms_lookup(d->vms, name);
  if (vm == NULL || !lcvm_vm_state_is_live(helper_vm_state(vm)))
    return TRUE;
  return busy(vm, hint, error);
}

/* ---- DryRun ---- */

gboolean
helper_manager_dry_run_validate(HelperCall *call, GError **error)
{
  if (!validate_name(call, error))
    return FALSE;
  call->data = g_strdup(call_name(call));
  call->destroy = g_free;
  return TRUE;
}

/* The argv StartVm would run and why it would refuse to, after the same validation a start
 * runs. The vsock CID shown is the first of cid_range: a start takes the first free one. */
GVariant *
helper_manager_dry_run(HelperDaemon *d, gpointer data, GError **error)
{
  const LcvmConfig *config = d->config;
  g_autoptr(GPtrArray) refusals = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  g_autoptr(HelperDefinition) def = helper_instance_validate_all(config, data, refusals, error);
  if (def == NULL)
    return NULL;
  g_autoptr(LcvmQemuSpec) spec =
      helper_instance_spec(config, def, (guint)config->cid_range.min, error);
  g_auto(GStrv) argv = spec ? lcvm_qemu_argv_build(spec, error) : NULL;
  if (argv == NULL)
    return NULL;
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a(ss)"));
  for (guint i = 0; i < refusals->len; i++) {
    const GError *refusal = refusals->pdata[i];
    g_autofree char *name = g_dbus_error_encode_gerror(refusal);
    g_variant_builder_add(&b, "(ss)", name, refusal->message);
  }
  return g_variant_new("(^asa(ss))", argv, &b);
}

/* ---- StartVm ---- */

typedef struct {
  HelperDaemon *daemon;
  HelperVm *vm;
  GStrv device_locks; /* taken by the launch in the worker thread, released in finish */
  char *previous_state;
  gboolean created;
  HelperRecord *record;
  int pidfd;
  int bridge_pidfd;
  gint64 exec_us;
} StartCall;

static void
start_call_free(gpointer p)
{
  StartCall *c = p;
  if (c->vm != NULL)
    helper_vm_unref(c->vm);
  g_strfreev(c->device_locks);
  g_free(c->previous_state);
  helper_record_free(c->record);
  g_free(c);
}

gboolean
helper_manager_start_validate(HelperCall *call, GError **error)
{
  const char *name = call_name(call);
  if (!validate_name(call, error))
    return FALSE;
  g_autofree char *hint = g_strdup_printf("`lium-cvm stop %s` first", name);
  return refuse_if_live(call->daemon, name, hint, error);
}

/* Locked: the VM's object shows "starting". */
gboolean
helper_manager_start_begin(HelperCall *call, GError **error)
{
  HelperDaemon *d = call->daemon;
  const char *name = call_name(call);
  gboolean created = helper_vms_lookup(d->vms, name) == NULL;
  HelperVm *vm = helper_vms_get(d->vms, name, error);
  if (vm == NULL)
    return FALSE;
  StartCall *c = g_new0(StartCall, 1);
  c->daemon = d;
  c->vm = helper_vm_ref(vm);
  c->created = created;
  c->pidfd = -1;
  c->bridge_pidfd = -1;
  c->previous_state = g_strdup(helper_vm_state(vm));
  call->data = c;
  call->destroy = start_call_free;
  lcvm_dbus_vm_set_boot_progress(vm->skeleton, "");
  lcvm_dbus_vm_set_boot_error(vm->skeleton, "");
  helper_vm_set_state(vm, LCVM_VM_STARTING);
  return TRUE;
}

/* The launch's HelperDeviceLocker: the devices' locks, owned by "start of VM NAME". */
static gboolean
start_lock_devices(gpointer data, const char *const *slots, GError **error)
{
  StartCall *c = data;
  g_autoptr(GStrvBuilder) keys = g_strv_builder_new();
  for (guint i = 0; slots[i] != NULL; i++) {
    g_autofree char *key = helper_device_lock_key(slots[i]);
    g_strv_builder_add(keys, key);
  }
  g_auto(GStrv) taken = g_strv_builder_end(keys);
  g_autofree char *operation = g_strdup_printf("start of VM %s", c->vm->name);
  if (!helper_lock_acquire(c->daemon, (const char *const *)taken, operation, error)) {
    g_prefix_error(error, "VM %s cannot start: ", c->vm->name);
    return FALSE;
  }
  c->device_locks = g_steal_pointer(&taken);
  return TRUE;
}

GVariant *
helper_manager_start(HelperDaemon *d, gpointer data, GError **error)
{
  StartCall *c = data;
  c->record = helper_vm_launch(d->config, d->alloc, c->vm->name, start_lock_devices, c, &c->pidfd,
                               &c->bridge_pidfd, &c->exec_us, error);
  if (c->record == NULL)
    return NULL;
  helper_crash_clear(d->config, c->vm->name); /* a new life: the last crash is history */
  helper_scope_adopt(c->vm->name, c->record->pid, c->record->bridge_pid);
  return g_variant_new("(o)", c->vm->path);
}

void
helper_manager_start_finish(HelperCall *call, gboolean ok)
{
  StartCall *c = call->data;
  HelperVm *vm = c->vm;
  helper_lock_release(c->daemon, (const char *const *)c->device_locks);
  if (!ok) {
    helper_vm_set_state(vm, c->previous_state);
    if (c->created)
      helper_vm_forget(vm);
    return;
  }
  g_message("VM %s: QEMU (pid %d) exec'd %.1f ms after StartVm", vm->name, (int)c->record->pid,
            (double)c->exec_us / 1000.0);
  lcvm_dbus_vm_set_boot_progress(vm->skeleton, "QEMU started");
  helper_vm_supervise(vm, g_steal_pointer(&c->record), c->pidfd, c->bridge_pidfd);
  helper_vm_flush(vm);
  helper_vm_check_qmp(vm);
}

/* ---- StopVm ---- */

typedef struct {
  HelperVm *vm;
  HelperStopRequest request;
  char *qmp_path;
  guint generation;
} StopCall;

static void
stop_call_free(gpointer p)
{
  StopCall *c = p;
  helper_vm_unref(c->vm);
  lcvm_close_fdp(&c->request.pidfd);
  g_free(c->qmp_path);
  g_free(c);
}

gboolean
helper_manager_stop_validate(HelperCall *call, GError **error)
{
  HelperDaemon *d = call->daemon;
  const char *name = call_name(call);
  guint timeout_s = 0;
  g_variant_get_child(call->args, 1, "u", &timeout_s);
  if (!validate_name(call, error))
    return FALSE;
  HelperVm *vm = helper_vms_lookup(d->vms, name);
  if (vm == NULL || vm->record == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s is not running (%s)", name,
                vm ? helper_vm_state(vm) : "the helper has not started it");
    return FALSE;
  }
  g_autofree char *lock = g_strdup_printf("vm:%s", name);
  if (helper_lock_held(d, lock))
    return busy(vm, "wait for the running operation to finish", error);
  StopCall *c = g_new0(StopCall, 1);
  c->vm = helper_vm_ref(vm);
  c->qmp_path = helper_runtime_path(d->config, name, LCVM_RUNTIME_QMP);
  c->generation = vm->generation;
  c->request = (HelperStopRequest){
    .config = d->config,
    .name = vm->name,
    .pid = vm->record->pid,
    .pidfd = fcntl(vm->pidfd, F_DUPFD_CLOEXEC, 3),
    .qmp_path = c->qmp_path,
    .agent_cid = helper_stop_agent_cid(d->config, (const char *const *)vm->record->argv,
                                       vm->record->reservation->cid),
    .timeout_s = timeout_s == 0 ? STOP_DEFAULT_TIMEOUT_S : MIN(timeout_s, STOP_MAX_TIMEOUT_S),
    .force = (call->flags & LCVM_STOP_FORCE) != 0,
    .step = &vm->stop_step,
  };
  call->data = c;
  call->destroy = stop_call_free;
  return TRUE;
}

gboolean
helper_manager_stop_begin(HelperCall *call, GError **error)
{
  StopCall *c = call->data;
  helper_vm_set_state(c->vm, LCVM_VM_STOPPING);
  return TRUE;
}

gboolean
helper_manager_stop_job(HelperJob *job, gpointer data, GError **error)
{
  StopCall *c = data;
  c->request.step_fn = helper_act_job_step;
  c->request.step_data = job;
  gboolean gone = helper_stop_ladder(&c->request);
  g_autofree char *how = NULL;
  if (!gone || !helper_vm_wait_released(c->vm, c->generation, RELEASE_WAIT_MS, &how)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "VM %s: QEMU is %s after SIGKILL (a device may be stuck in the kernel); "
                "check `lium-cvm status %s` and the kernel log",
                c->vm->name, gone ? "gone but not yet released" : "still running", c->vm->name);
    return FALSE;
  }
  helper_job_step(job, 1.0, "VM %s stopped: %s", c->vm->name, how);
  return TRUE;
}

/* ---- RemoveVm, ListVms ---- */

gboolean
helper_manager_remove_validate(HelperCall *call, GError **error)
{
  const char *name = call_name(call);
  if (!validate_name(call, error))
    return FALSE;
  g_autofree char *hint = g_strdup_printf("stop it first (`lium-cvm stop %s`)", name);
  if (!refuse_if_live(call->daemon, name, hint, error))
    return FALSE;
  call->data = g_strdup(name);
  call->destroy = g_free;
  return TRUE;
}

GVariant *
helper_manager_remove(HelperDaemon *d, gpointer data, GError **error)
{
  if (!helper_vm_remove_instance(d->config, data, error))
    return NULL;
  return g_variant_new("()");
}

void
helper_manager_remove_finish(HelperCall *call, gboolean ok)
{
  HelperVm *vm = ok ? helper_vms_lookup(call->daemon->vms, call->data) : NULL;
  if (vm != NULL)
    helper_vm_forget(vm);
}

GVariant *
helper_manager_list(HelperDaemon *d, gpointer data, GError **error)
{
  g_autoptr(GList) names = g_hash_table_get_keys(d->vms->by_name);
  names = g_list_sort(names, (GCompareFunc)g_strcmp0);
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("ao"));
  for (GList *l = names; l != NULL; l = l->next)
    g_variant_builder_add(&b, "o", helper_vms_lookup(d->vms, l->data)->path);
  return g_variant_new("(ao)", &b);
}
