/* SPDX-License-Identifier: MIT */
/* The VM objects and the life of each VM's QEMU while the helper watches it (helper-vm.h).
 * Worker threads (the QMP check) hand their results back to the main thread. */
#include "helper-vm.h"
#include "helper-bridge.h"
#include "helper-events.h"
#include "helper-qmp.h"
#include "helper-stop.h"
#include "helper-vm-launch.h"
#include "lcvm-fd.h"
#include "lcvm-text.h"
#include "lcvm-names.h"
#include "lcvm-vm-object.h"

#include <unistd.h>

#define QMP_TIMEOUT_MS   15000
#define BOOT_ERROR_LINES 5
/* A bridge that keeps dying is not restarted for ever: after this many restarts in one VM
 * life the VM runs on without a host API and BootError says so. */
#define BRIDGE_MAX_RESTARTS 3

/* Takes the VM's object off the bus (once; a skeleton whose export failed never was on it). */
static void
vm_unexport(HelperVm *vm)
{
  GDBusInterfaceSkeleton *skeleton = G_DBUS_INTERFACE_SKELETON(vm->skeleton);
  if (skeleton != NULL && g_dbus_interface_skeleton_get_connection(skeleton) != NULL)
    g_dbus_interface_skeleton_unexport(skeleton);
}

static void
vm_clear(gpointer p)
{
  HelperVm *vm = p;
  vm_unexport(vm);
  g_clear_object(&vm->skeleton);
  helper_record_free(vm->record);
  g_free(vm->name);
  g_free(vm->path);
  g_free(vm->exit_how);
  g_mutex_clear(&vm->lock);
  g_cond_clear(&vm->released);
}

HelperVm *
helper_vm_ref(HelperVm *vm)
{
  return g_rc_box_acquire(vm);
}

void
helper_vm_unref(HelperVm *vm)
{
  g_rc_box_release_full(vm, vm_clear);
}

const char *
helper_vm_state(HelperVm *vm)
{
  return lcvm_dbus_vm_get_state(vm->skeleton);
}

void
helper_vm_flush(HelperVm *vm)
{
  g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(vm->skeleton));
}

void
helper_vm_set_state(HelperVm *vm, const char *state)
{
  lcvm_dbus_vm_set_state(vm->skeleton, state);
  helper_vm_flush(vm);
}

HelperVm *
helper_vms_lookup(HelperVms *vms, const char *name)
{
  return g_hash_table_lookup(vms->by_name, name);
}

/* The VM's object, exported on first use with State "defined". */
HelperVm *
helper_vms_get(HelperVms *vms, const char *name, GError **error)
{
  HelperVm *vm = helper_vms_lookup(vms, name);
  if (vm != NULL)
    return vm;
  vm = g_rc_box_new0(HelperVm);
  vm->vms = vms;
  vm->name = g_strdup(name);
  vm->path = lcvm_vm_object_path(name);
  vm->pidfd = -1;
  vm->bridge_pidfd = -1;
  g_mutex_init(&vm->lock);
  g_cond_init(&vm->released);
  vm->skeleton = lcvm_dbus_vm_skeleton_new();
  lcvm_dbus_vm_set_name(vm->skeleton, name);
  lcvm_dbus_vm_set_state(vm->skeleton, LCVM_VM_DEFINED);
  if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(vm->skeleton), vms->daemon->bus,
                                        vm->path, error)) {
    helper_vm_unref(vm);
    return NULL;
  }
  g_hash_table_insert(vms->by_name, g_strdup(name), vm);
  return vm;
}

/* The VM leaves the bus now, even while a job or a watch still holds the HelperVm: a new start of
 * the same name exports a new object at the same path. */
void
helper_vm_forget(HelperVm *vm)
{
  vm_unexport(vm);
  g_hash_table_remove(vm->vms->by_name, vm->name);
}

/* ---- QEMU's life ---- */

static void
vm_show_record(HelperVm *vm)
{
  const HelperRecord *r = vm->record;
  LcvmDbusVm *s = vm->skeleton;
  lcvm_dbus_vm_set_pid(s, (guint)r->pid);
  lcvm_dbus_vm_set_started_at(s, r->started_at);
  lcvm_dbus_vm_set_exit_status(s, "");
  lcvm_dbus_vm_set_stop_step(s, "");
  lcvm_dbus_vm_set_unexpected_exit(s, "");
  lcvm_dbus_vm_set_console_tail(s, NULL);
  lcvm_dbus_vm_set_boot_error(s, "");
  lcvm_dbus_vm_set_gpus(s, (const char *const *)r->reservation->devices);
  lcvm_dbus_vm_set_ports(s, (const char *const *)r->forwards);
  lcvm_dbus_vm_set_host_api_port(s, r->reservation->hostapi_port);
  lcvm_dbus_vm_set_compose_hash(s, r->compose_hash);
  lcvm_dbus_vm_set_os_image_hash(s, r->os_image_hash);
  lcvm_dbus_vm_set_qemu_version(s, r->qemu_version);
}

/* ---- the guest's events and the host-API bridge ---- */

/* One line of the event file (helper-events.h): the guest's own words for the HelperVm object. */
static void
vm_on_event(const char *event, const char *payload, gpointer data)
{
  HelperVm *vm = data;
  if (g_str_equal(event, "boot.progress")) {
    lcvm_dbus_vm_set_boot_progress(vm->skeleton, payload);
    vm->guest_spoke = TRUE;
  } else if (g_str_equal(event, "boot.error")) {
    lcvm_dbus_vm_set_boot_error(vm->skeleton, payload);
  } else if (g_str_equal(event, "shutdown.progress")) {
    g_autofree char *text = g_strdup_printf("shutting down: %s", payload);
    lcvm_dbus_vm_set_boot_progress(vm->skeleton, text);
    vm->guest_spoke = TRUE;
    vm->announced = TRUE;
  }
}

static void
vm_events_read(gpointer data)
{
  helper_vm_flush(data);
}

/* From the file's start: a re-adopting helper replays what the guest said meanwhile. */
static void
vm_follow_events(HelperVm *vm)
{
  g_autoptr(GError) error = NULL;
  vm->guest_spoke = FALSE;
  vm->announced = FALSE;
  vm->events = helper_events_follow(vm->vms->daemon->config, vm->name, vm_on_event, vm_events_read,
                                    vm, &error);
  if (vm->events == NULL)
    g_warning("VM %s: its boot progress will not be shown: %s", vm->name, error->message);
}

static void
vm_unfollow_events(HelperVm *vm)
{
  if (vm->events == NULL)
    return;
  helper_events_catch_up(vm->events);
  g_clear_pointer(&vm->events, helper_events_free);
}

static void vm_on_bridge_exit(gpointer data);

static void
vm_watch_bridge(HelperVm *vm, int pidfd)
{
  vm->bridge_pidfd = pidfd;
  vm->bridge_watch = helper_process_watch_full(pidfd, vm_on_bridge_exit, helper_vm_ref(vm),
                                               (GDestroyNotify)helper_vm_unref);
}

/* QEMU is gone: its bridge goes too. */
static void
vm_stop_bridge(HelperVm *vm)
{
  if (vm->bridge_watch != 0)
    g_source_remove(vm->bridge_watch);
  vm->bridge_watch = 0;
  if (vm->bridge_pidfd < 0)
    return;
  g_autofree char *how = helper_bridge_stop(vm->bridge_pidfd);
  g_message("VM %s: host-API bridge stopped: %s", vm->name, how);
  lcvm_close_fdp(&vm->bridge_pidfd);
}

/* A new bridge for the running VM, recorded so a restarted helper re-adopts it. */
static gboolean
vm_start_bridge(HelperVm *vm, GError **error)
{
  HelperRecord *r = vm->record;
  const LcvmConfig *config = vm->vms->daemon->config;
  HelperBridge b;
  if (!helper_bridge_spawn(config, vm->name, r->reservation, &b, error))
    return FALSE;
  r->bridge_pid = b.pid;
  r->bridge_start_time = b.start_time;
  g_strfreev(r->bridge_argv);
  r->bridge_argv = g_steal_pointer(&b.argv);
  if (!helper_record_write(config, r, error)) {
    g_free(helper_bridge_stop(b.pidfd));
    helper_bridge_clear(&b);
    r->bridge_pid = 0;
    return FALSE;
  }
  g_message("VM %s: host-API bridge (pid %d) started", vm->name, (int)b.pid);
  vm_watch_bridge(vm, b.pidfd);
  return TRUE;
}

/* The bridge ended while QEMU runs: BootError says so, and a new one serves the guest —
 * unless it keeps dying. The VM itself keeps running either way: a guest whose workloads
 * are up loses nothing but the host API, and the operator decides when to restart it. */
void
helper_vm_restart_bridge(HelperVm *vm, const char *why)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *message = NULL;
  if (vm->respawns >= BRIDGE_MAX_RESTARTS)
    message = g_strdup_printf(
        "the host-API bridge %s, after %u restarts: the guest gets no sealing keys and reports "
        "no progress now; restart the VM (`lium-cvm stop %s`, `lium-cvm run %s`) and read the "
        "helper's log",
        why, BRIDGE_MAX_RESTARTS, vm->name, vm->name);
  else if (vm->respawns++, !vm_start_bridge(vm, &error))
    message = g_strdup_printf("the host-API bridge %s and could not be restarted (%s): the "
                              "guest gets no sealing keys now",
                              why, error->message);
  else
    message = g_strdup_printf("the host-API bridge %s and was restarted", why);
  g_warning("VM %s: %s", vm->name, message);
  lcvm_dbus_vm_set_boot_error(vm->skeleton, message);
  helper_vm_flush(vm);
}

static void
vm_on_bridge_exit(gpointer data)
{
  HelperVm *vm = data;
  vm->bridge_watch = 0;
  g_autofree char *how = helper_bridge_exit_how(vm->bridge_pidfd);
  lcvm_close_fdp(&vm->bridge_pidfd);
  if (vm->record == NULL)
    return;
  vm->record->bridge_pid = 0;
  helper_vm_restart_bridge(vm, how);
}

static void
vm_released(HelperVm *vm, guint generation, const char *how)
{
  g_mutex_lock(&vm->lock);
  vm->released_generation = generation;
  g_free(vm->exit_how);
  vm->exit_how = g_strdup(how);
  g_cond_broadcast(&vm->released);
  g_mutex_unlock(&vm->lock);
}

/* Unexpected: visible on the object, in the journal and (for a helper restart) in the
 * instance's crash record. Never restarted. */
void
helper_vm_show_crash(HelperVm *vm, const HelperCrash *crash)
{
  g_autofree char *text = helper_crash_describe(crash);
  lcvm_dbus_vm_set_unexpected_exit(vm->skeleton, text);
  lcvm_dbus_vm_set_console_tail(vm->skeleton, (const char *const *)crash->console);
  lcvm_dbus_vm_set_exit_status(vm->skeleton, crash->how);
}

static void
vm_on_exit(gpointer data)
{
  HelperVm *vm = data;
  HelperVms *vms = vm->vms;
  const LcvmConfig *config = vms->daemon->config;
  gint64 t0 = g_get_monotonic_time();
  vm->watch = 0;
  siginfo_t info;
  gboolean known = helper_process_reap(vm->pidfd, &info);
  HelperStopStep step = g_atomic_int_get(&vm->stop_step);
  vm_unfollow_events(vm); /* the guest's last words first: did it announce its shutdown? */
  gboolean failed = FALSE;
  g_autofree char *how = helper_stop_exit_how(step, known, &info, vm->announced, &failed);
  if (!failed && step == HELPER_STOP_NONE && helper_crash_console_panicked(config, vm->name)) {
    g_free(how);
    how = g_strdup("guest kernel panic (its console says so), then its reset ended QEMU");
    failed = TRUE;
  }
  g_message("VM %s: QEMU (pid %d) ended: %s", vm->name, (int)vm->record->pid, how);
  vm_stop_bridge(vm);
  if (failed || g_str_equal(helper_vm_state(vm), LCVM_VM_STARTING)) {
    g_autofree char *raw =
        helper_vm_log_tail(config, vm->name, LCVM_INSTANCE_QEMU_LOG, BOOT_ERROR_LINES);
    /* A tail read from an offset may start mid-character: valid UTF-8 before it is a property. */
    g_autofree char *tail = lcvm_text_cut(raw, 4096);
    lcvm_dbus_vm_set_boot_error(vm->skeleton, tail[0] ? tail : how);
  }
  g_autoptr(HelperCrash) crash = failed ? helper_crash_new(config, vm->name, how) : NULL;
  if (crash != NULL)
    helper_crash_report(config, crash);
  failed = failed || g_str_equal(helper_vm_state(vm), LCVM_VM_STARTING);
  helper_vm_release(config, vms->daemon->alloc, vm->record);
  g_clear_pointer(&vm->record, helper_record_free);
  lcvm_close_fdp(&vm->pidfd);
  lcvm_dbus_vm_set_pid(vm->skeleton, 0);
  lcvm_dbus_vm_set_exit_status(vm->skeleton, how);
  lcvm_dbus_vm_set_stop_step(vm->skeleton, helper_stop_step_name(step));
  if (crash != NULL)
    helper_vm_show_crash(vm, crash);
  helper_vm_set_state(vm, failed ? LCVM_VM_FAILED : LCVM_VM_STOPPED);
  g_message("VM %s: released %.1f ms after its exit was seen", vm->name,
            (double)(g_get_monotonic_time() - t0) / 1000.0);
  vm_released(vm, vm->generation, how);
  if (vm->held) {
    vm->held = FALSE;
    helper_daemon_release(vms->daemon);
  }
  helper_vm_unref(vm);
}

/* QEMU runs: watch its exit and its bridge's, follow the guest's events and keep the helper
 * from idling out. bridge_pidfd -1: no bridge runs (re-adoption found it gone). */
void
helper_vm_supervise(HelperVm *vm, HelperRecord *record, int pidfd, int bridge_pidfd)
{
  vm->record = record;
  vm->pidfd = pidfd;
  vm->generation++;
  g_atomic_int_set(&vm->stop_step, HELPER_STOP_NONE);
  vm->watch = helper_process_watch(pidfd, vm_on_exit, helper_vm_ref(vm));
  vm->held = TRUE;
  helper_daemon_hold(vm->vms->daemon);
  vm_show_record(vm);
  vm->respawns = 0;
  if (bridge_pidfd >= 0)
    vm_watch_bridge(vm, bridge_pidfd);
  vm_follow_events(vm);
}

/* ---- QMP check: "starting" → "running" ---- */

typedef struct {
  HelperVm *vm;
  guint generation;
  char *qmp_path;
} QmpCheck;

static void
qmp_check_free(gpointer p)
{
  QmpCheck *c = p;
  helper_vm_unref(c->vm);
  g_free(c->qmp_path);
  g_free(c);
}

static void
qmp_check_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  QmpCheck *c = data;
  GError *error = NULL;
  g_autoptr(HelperQmp) qmp = helper_qmp_connect(c->qmp_path, QMP_TIMEOUT_MS, &error);
  char *status = qmp ? helper_qmp_query_status(qmp, &error) : NULL;
  if (status != NULL)
    g_task_return_pointer(task, status, g_free);
  else
    g_task_return_error(task, error);
}

static void
qmp_check_done(GObject *source, GAsyncResult *res, gpointer data)
{
  QmpCheck *c = g_task_get_task_data(G_TASK(res));
  HelperVm *vm = c->vm;
  g_autoptr(GError) error = NULL;
  g_autofree char *status = g_task_propagate_pointer(G_TASK(res), &error);
  if (vm->generation != c->generation || vm->record == NULL)
    return; /* that QEMU is gone already */
  if (status == NULL) {
    lcvm_dbus_vm_set_boot_error(vm->skeleton, error->message);
    helper_vm_flush(vm);
    return;
  }
  /* What the guest reported says more than QEMU's run state. */
  g_autofree char *progress = g_strdup_printf("QEMU %s", status);
  if (!vm->guest_spoke)
    lcvm_dbus_vm_set_boot_progress(vm->skeleton, progress);
  if (g_str_equal(helper_vm_state(vm), LCVM_VM_STARTING))
    lcvm_dbus_vm_set_state(vm->skeleton, LCVM_VM_RUNNING);
  helper_vm_flush(vm);
}

void
helper_vm_check_qmp(HelperVm *vm)
{
  QmpCheck *c = g_new0(QmpCheck, 1);
  c->vm = helper_vm_ref(vm);
  c->generation = vm->generation;
  c->qmp_path = helper_runtime_path(vm->vms->daemon->config, vm->name, LCVM_RUNTIME_QMP);
  g_autoptr(GTask) task = g_task_new(NULL, NULL, qmp_check_done, NULL);
  g_task_set_task_data(task, c, qmp_check_free);
  g_task_run_in_thread(task, qmp_check_thread);
}

gboolean
helper_vm_wait_released(HelperVm *vm, guint generation, guint timeout_ms, char **how)
{
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  g_mutex_lock(&vm->lock);
  while (vm->released_generation != generation)
    if (!g_cond_wait_until(&vm->released, &vm->lock, deadline))
      break;
  gboolean ok = vm->released_generation == generation;
  *how = g_strdup(vm->exit_how);
  g_mutex_unlock(&vm->lock);
  return ok;
}

GStrv
helper_vms_live_names(HelperDaemon *d)
{
  GPtrArray *names = g_ptr_array_new();
  GHashTableIter it;
  gpointer key, value;
  if (d->vms != NULL) {
    g_hash_table_iter_init(&it, d->vms->by_name);
    while (g_hash_table_iter_next(&it, &key, &value))
      if (((HelperVm *)value)->record != NULL)
        g_ptr_array_add(names, g_strdup(key));
  }
  g_ptr_array_add(names, NULL);
  return (GStrv)g_ptr_array_free(names, FALSE);
}

HelperVms *
helper_vms_new(HelperDaemon *d)
{
  HelperVms *vms = g_new0(HelperVms, 1);
  vms->daemon = d;
  vms->by_name =
      g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)helper_vm_unref);
  return vms;
}
