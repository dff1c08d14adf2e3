/* SPDX-License-Identifier: MIT */
/* The VMs on the bus: Manager.StartVm/StopVm/RemoveVm/ListVms, one io.lium.Cvm1.Vm object
 * per VM the helper knows, the exit watch of every running QEMU and the re-adoption of the
 * VMs a previous helper left running. State lives in the main thread; launches and stops run
 * in worker threads and hand their results back. A VM is "stopped" only once its QEMU is gone
 * and everything its launch took was given back (helper_vm_release). Nothing here ever kills
 * a VM because the helper itself stops. */
#include "helper-authorizer.h"
#include "helper-bridge.h"
#include "helper-crash.h"
#include "helper-daemon.h"
#include "helper-events.h"
#include "helper-job.h"
#include "helper-qmp.h"
#include "helper-scope.h"
#include "helper-stop.h"
#include "helper-uid-cursor.h"
#include "helper-vm.h"
#include "lcvm-error.h"
#include "lcvm-text.h"
#include "lcvm-names.h"
#include "lcvm-validate.h"
#include "lcvm-vm-object.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define STOP_DEFAULT_TIMEOUT_S 30
#define STOP_MAX_TIMEOUT_S     3600
#define RELEASE_WAIT_MS        30000
#define QMP_TIMEOUT_MS         15000
#define BOOT_ERROR_LINES       5
/* A bridge that keeps dying is not restarted for ever: after this many restarts in one VM
 * life the VM runs on without a host API and BootError says so. */
#define BRIDGE_MAX_RESTARTS 3

typedef struct _HelperVms {
  HelperDaemon *daemon;
  HelperAlloc *alloc;
  GHashTable *by_name; /* name → Vm (reference) */
} HelperVms;

/* One VM. Refcounted (GRcBox): worker threads keep it alive. Fields marked main are only
 * touched in the main thread. */
typedef struct {
  HelperVms *vms;
  char *name;
  char *path;
  LcvmDbusVm *skeleton; /* main */
  HelperRecord *record; /* main; while QEMU may live */
  int pidfd;            /* main; -1 when none */
  guint watch;          /* main */
  guint generation;     /* main; one per launch */
  gboolean held;        /* main; the daemon is held while QEMU lives */
  int bridge_pidfd;     /* main; the host-API bridge, -1 when none runs */
  guint bridge_watch;   /* main */
  guint respawns;       /* main; bridge restarts in this VM life */
  HelperEvents *events; /* main; the guest's Notify events, while QEMU lives */
  gboolean guest_spoke; /* main; the guest sent a boot.progress in this VM life */
  gboolean announced;   /* main; the guest sent shutdown.progress in this VM life */
  gint stop_step;       /* atomic HelperStopStep */
  GMutex lock;          /* guards released_generation and exit_how */
  GCond released;       /* signalled once a launch's QEMU is gone and released */
  guint released_generation;
  char *exit_how;
} Vm;

/* Takes the VM's object off the bus (once; a skeleton whose export failed never was on it). */
static void
vm_unexport(Vm *vm)
{
  GDBusInterfaceSkeleton *skeleton = G_DBUS_INTERFACE_SKELETON(vm->skeleton);
  if (skeleton != NULL && g_dbus_interface_skeleton_get_connection(skeleton) != NULL)
    g_dbus_interface_skeleton_unexport(skeleton);
}

static void
vm_clear(gpointer p)
{
  Vm *vm = p;
  vm_unexport(vm);
  g_clear_object(&vm->skeleton);
  helper_record_free(vm->record);
  g_free(vm->name);
  g_free(vm->path);
  g_free(vm->exit_how);
  g_mutex_clear(&vm->lock);
  g_cond_clear(&vm->released);
}

static Vm *
vm_ref(Vm *vm)
{
  return g_rc_box_acquire(vm);
}

static void
vm_unref(Vm *vm)
{
  g_rc_box_release_full(vm, vm_clear);
}

static const char *
vm_state(Vm *vm)
{
  return lcvm_dbus_vm_get_state(vm->skeleton);
}

static void
vm_flush(Vm *vm)
{
  g_dbus_interface_skeleton_flush(G_DBUS_INTERFACE_SKELETON(vm->skeleton));
}

static void
vm_set_state(Vm *vm, const char *state)
{
  lcvm_dbus_vm_set_state(vm->skeleton, state);
  vm_flush(vm);
}

static Vm *
vm_lookup(HelperVms *vms, const char *name)
{
  return g_hash_table_lookup(vms->by_name, name);
}

/* The VM's object, exported on first use with State "defined". */
static Vm *
vm_get(HelperVms *vms, const char *name, GError **error)
{
  Vm *vm = vm_lookup(vms, name);
  if (vm != NULL)
    return vm;
  vm = g_rc_box_new0(Vm);
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
  helper_authorizer_attach(vms->daemon, G_DBUS_INTERFACE_SKELETON(vm->skeleton));
  if (!g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(vm->skeleton), vms->daemon->bus,
                                        vm->path, error)) {
    vm_unref(vm);
    return NULL;
  }
  g_hash_table_insert(vms->by_name, g_strdup(name), vm);
  return vm;
}

/* The VM leaves the bus now, even while a job or a watch still holds the Vm: a new start of
 * the same name exports a new object at the same path. */
static void
vm_forget(Vm *vm)
{
  vm_unexport(vm);
  g_hash_table_remove(vm->vms->by_name, vm->name);
}

/* ---- QEMU's life ---- */

static void
vm_show_record(Vm *vm)
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

/* One line of the event file (helper-events.h): the guest's own words for the Vm object. */
static void
vm_on_event(const char *event, const char *payload, gpointer data)
{
  Vm *vm = data;
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
  vm_flush(data);
}

/* From the file's start: a re-adopting helper replays what the guest said meanwhile. */
static void
vm_follow_events(Vm *vm)
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
vm_unfollow_events(Vm *vm)
{
  if (vm->events == NULL)
    return;
  helper_events_catch_up(vm->events);
  g_clear_pointer(&vm->events, helper_events_free);
}

static void vm_on_bridge_exit(gpointer data);

static void
vm_watch_bridge(Vm *vm, int pidfd)
{
  vm->bridge_pidfd = pidfd;
  vm->bridge_watch =
      helper_process_watch_full(pidfd, vm_on_bridge_exit, vm_ref(vm), (GDestroyNotify)vm_unref);
}

/* QEMU is gone: its bridge goes too. */
static void
vm_stop_bridge(Vm *vm)
{
  if (vm->bridge_watch != 0)
    g_source_remove(vm->bridge_watch);
  vm->bridge_watch = 0;
  if (vm->bridge_pidfd < 0)
    return;
  g_autofree char *how = helper_bridge_stop(vm->bridge_pidfd);
  g_message("VM %s: host-API bridge stopped: %s", vm->name, how);
  close(vm->bridge_pidfd);
  vm->bridge_pidfd = -1;
}

/* A new bridge for the running VM, recorded so a restarted helper re-adopts it. */
static gboolean
vm_start_bridge(Vm *vm, GError **error)
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
static void
vm_restart_bridge(Vm *vm, const char *why)
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
  vm_flush(vm);
}

static void
vm_on_bridge_exit(gpointer data)
{
  Vm *vm = data;
  vm->bridge_watch = 0;
  g_autofree char *how = helper_bridge_exit_how(vm->bridge_pidfd);
  close(vm->bridge_pidfd);
  vm->bridge_pidfd = -1;
  if (vm->record == NULL)
    return;
  vm->record->bridge_pid = 0;
  vm_restart_bridge(vm, how);
}

static void
vm_released(Vm *vm, guint generation, const char *how)
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
static void
vm_show_crash(Vm *vm, const HelperCrash *crash)
{
  g_autofree char *text = helper_crash_describe(crash);
  lcvm_dbus_vm_set_unexpected_exit(vm->skeleton, text);
  lcvm_dbus_vm_set_console_tail(vm->skeleton, (const char *const *)crash->console);
  lcvm_dbus_vm_set_exit_status(vm->skeleton, crash->how);
}

static void
vm_on_exit(gpointer data)
{
  Vm *vm = data;
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
  if (failed || g_str_equal(vm_state(vm), LCVM_VM_STARTING)) {
    g_autofree char *raw =
        helper_vm_log_tail(config, vm->name, HELPER_VM_QEMU_LOG, BOOT_ERROR_LINES);
    /* A tail read from an offset may start mid-character: valid UTF-8 before it is a property. */
    g_autofree char *tail = lcvm_text_cut(raw, 4096);
    lcvm_dbus_vm_set_boot_error(vm->skeleton, tail[0] ? tail : how);
  }
  g_autoptr(HelperCrash) crash = failed ? helper_crash_new(config, vm->name, how) : NULL;
  if (crash != NULL)
    helper_crash_report(config, crash);
  failed = failed || g_str_equal(vm_state(vm), LCVM_VM_STARTING);
  helper_vm_release(config, vms->alloc, vm->record);
  g_clear_pointer(&vm->record, helper_record_free);
  close(vm->pidfd);
  vm->pidfd = -1;
  lcvm_dbus_vm_set_pid(vm->skeleton, 0);
  lcvm_dbus_vm_set_exit_status(vm->skeleton, how);
  lcvm_dbus_vm_set_stop_step(vm->skeleton, helper_stop_step_name(step));
  if (crash != NULL)
    vm_show_crash(vm, crash);
  vm_set_state(vm, failed ? LCVM_VM_FAILED : LCVM_VM_STOPPED);
  g_message("VM %s: released %.1f ms after its exit was seen", vm->name,
            (double)(g_get_monotonic_time() - t0) / 1000.0);
  vm_released(vm, vm->generation, how);
  if (vm->held) {
    vm->held = FALSE;
    helper_daemon_release(vms->daemon);
  }
  vm_unref(vm);
}

/* QEMU runs: watch its exit and its bridge's, follow the guest's events and keep the helper
 * from idling out. bridge_pidfd -1: no bridge runs (re-adoption found it gone). */
static void
vm_supervise(Vm *vm, HelperRecord *record, int pidfd, int bridge_pidfd)
{
  vm->record = record;
  vm->pidfd = pidfd;
  vm->generation++;
  g_atomic_int_set(&vm->stop_step, HELPER_STOP_NONE);
  vm->watch = helper_process_watch(pidfd, vm_on_exit, vm_ref(vm));
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
  Vm *vm;
  guint generation;
  char *qmp_path;
} QmpCheck;

static void
qmp_check_free(gpointer p)
{
  QmpCheck *c = p;
  vm_unref(c->vm);
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
  Vm *vm = c->vm;
  g_autoptr(GError) error = NULL;
  g_autofree char *status = g_task_propagate_pointer(G_TASK(res), &error);
  if (vm->generation != c->generation || vm->record == NULL)
    return; /* that QEMU is gone already */
  if (status == NULL) {
    lcvm_dbus_vm_set_boot_error(vm->skeleton, error->message);
    vm_flush(vm);
    return;
  }
  /* What the guest reported says more than QEMU's run state. */
  g_autofree char *progress = g_strdup_printf("QEMU %s", status);
  if (!vm->guest_spoke)
    lcvm_dbus_vm_set_boot_progress(vm->skeleton, progress);
  if (g_str_equal(vm_state(vm), LCVM_VM_STARTING))
    lcvm_dbus_vm_set_state(vm->skeleton, LCVM_VM_RUNNING);
  vm_flush(vm);
}

static void
vm_check_qmp(Vm *vm)
{
  QmpCheck *c = g_new0(QmpCheck, 1);
  c->vm = vm_ref(vm);
  c->generation = vm->generation;
  c->qmp_path = helper_runtime_path(vm->vms->daemon->config, vm->name, HELPER_RUNTIME_QMP);
  g_autoptr(GTask) task = g_task_new(NULL, NULL, qmp_check_done, NULL);
  g_task_set_task_data(task, c, qmp_check_free);
  g_task_run_in_thread(task, qmp_check_thread);
}

/* ---- StartVm ---- */

typedef struct {
  HelperVms *vms;
  Vm *vm;
  GDBusMethodInvocation *inv;
  char *lock[2];
  GStrv device_locks; /* taken by the launch in the worker thread, released in start_done */
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
    vm_unref(c->vm);
  g_free(c->lock[0]);
  g_strfreev(c->device_locks);
  g_free(c->previous_state);
  helper_record_free(c->record);
  g_free(c);
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
  if (!helper_lock_acquire(c->vms->daemon, (const char *const *)taken, operation, error)) {
    g_prefix_error(error, "VM %s cannot start: ", c->vm->name);
    return FALSE;
  }
  c->device_locks = g_steal_pointer(&taken);
  return TRUE;
}

static void
start_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  StartCall *c = data;
  GError *error = NULL;
  const LcvmConfig *config = c->vms->daemon->config;
  c->record = helper_vm_launch(config, c->vms->alloc, c->vm->name, start_lock_devices, c, &c->pidfd,
                               &c->bridge_pidfd, &c->exec_us, &error);
  if (c->record == NULL) {
    g_task_return_error(task, error);
    return;
  }
  helper_crash_clear(config, c->vm->name); /* a new life: the last crash is history */
  helper_scope_adopt(c->vm->name, c->record->pid, c->record->bridge_pid);
  g_task_return_boolean(task, TRUE);
}

static void
start_done(GObject *source, GAsyncResult *res, gpointer data)
{
  StartCall *c = g_task_get_task_data(G_TASK(res));
  Vm *vm = c->vm;
  HelperDaemon *d = c->vms->daemon;
  g_autoptr(GError) error = NULL;
  helper_lock_release(d, (const char *const *)c->lock);
  helper_lock_release(d, (const char *const *)c->device_locks);
  if (!g_task_propagate_boolean(G_TASK(res), &error)) {
    vm_set_state(vm, c->previous_state);
    if (c->created)
      vm_forget(vm);
    helper_return_error(c->inv, error);
    helper_daemon_release(d);
    return;
  }
  g_message("VM %s: QEMU (pid %d) exec'd %.1f ms after StartVm", vm->name, (int)c->record->pid,
            (double)c->exec_us / 1000.0);
  lcvm_dbus_vm_set_boot_progress(vm->skeleton, "QEMU started");
  vm_supervise(vm, g_steal_pointer(&c->record), c->pidfd, c->bridge_pidfd);
  vm_flush(vm);
  vm_check_qmp(vm);
  helper_return_ok(c->inv, g_variant_new("(o)", vm->path));
  helper_daemon_release(d);
}

static gboolean
refuse_unless_zero(GDBusMethodInvocation *inv, guint64 flags, guint64 allowed)
{
  if ((flags & ~allowed) == 0)
    return FALSE;
  g_autoptr(GError) error =
      g_error_new(LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                  "unknown flags 0x%" G_GINT64_MODIFIER "x", flags & ~allowed);
  helper_return_error(inv, error);
  return TRUE;
}

static gboolean
refuse_bad_name(GDBusMethodInvocation *inv, const char *name)
{
  g_autoptr(GError) error = NULL;
  if (lcvm_vm_name_valid(name, &error))
    return FALSE;
  helper_return_error(inv, error);
  return TRUE;
}

static void
return_busy(GDBusMethodInvocation *inv, Vm *vm, const char *what)
{
  g_autoptr(GError) error =
      g_error_new(LCVM_ERROR, LCVM_ERROR_BUSY, "VM %s is %s; %s", vm->name, vm_state(vm), what);
  helper_return_error(inv, error);
}

/* TRUE, with the call answered Busy, while VM name runs; hint says what to do. */
static gboolean
refuse_if_live(GDBusMethodInvocation *inv, HelperVms *vms, const char *name, const char *hint)
{
  Vm *vm = vm_lookup(vms, name);
  if (vm == NULL || !lcvm_vm_state_is_live(vm_state(vm)))
    return FALSE;
  return_busy(inv, vm, hint);
  return TRUE;
}

static gboolean
handle_start_vm(LcvmDbusManager *manager, GDBusMethodInvocation *inv, const char *name,
                guint64 flags, gpointer data)
{
  HelperDaemon *d = data;
  if (refuse_bad_name(inv, name) || refuse_unless_zero(inv, flags, 0))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  g_autofree char *hint = g_strdup_printf("`lium-cvm stop %s` first", name);
  if (refuse_if_live(inv, d->vms, name, hint))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  StartCall *c = g_new0(StartCall, 1);
  c->vms = d->vms;
  c->inv = inv;
  c->lock[0] = g_strdup_printf("vm:%s", name);
  c->pidfd = -1;
  c->bridge_pidfd = -1;
  g_autoptr(GError) error = NULL;
  c->created = vm_lookup(d->vms, name) == NULL;
  Vm *vm = vm_get(d->vms, name, &error);
  if (vm == NULL || !helper_lock_acquire(d, (const char *const *)c->lock, "start", &error)) {
    if (vm != NULL && c->created)
      vm_forget(vm);
    start_call_free(c);
    helper_return_error(inv, error);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  c->vm = vm_ref(vm);
  c->previous_state = g_strdup(vm_state(vm));
  lcvm_dbus_vm_set_boot_progress(vm->skeleton, "");
  lcvm_dbus_vm_set_boot_error(vm->skeleton, "");
  vm_set_state(vm, LCVM_VM_STARTING);
  helper_daemon_hold(d);
  g_autoptr(GTask) task = g_task_new(NULL, NULL, start_done, NULL);
  g_task_set_task_data(task, c, start_call_free);
  g_task_run_in_thread(task, start_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- StopVm ---- */

typedef struct {
  Vm *vm;
  HelperStopRequest request;
  char *qmp_path;
  guint generation;
} StopCall;

static void
stop_call_free(gpointer p)
{
  StopCall *c = p;
  vm_unref(c->vm);
  close(c->request.pidfd);
  g_free(c->qmp_path);
  g_free(c);
}

/* QEMU is gone; the main thread gives back what it held. */
static gboolean
wait_released(StopCall *c, char **how)
{
  Vm *vm = c->vm;
  gint64 deadline = g_get_monotonic_time() + RELEASE_WAIT_MS * 1000;
  g_mutex_lock(&vm->lock);
  while (vm->released_generation != c->generation)
    if (!g_cond_wait_until(&vm->released, &vm->lock, deadline))
      break;
  gboolean ok = vm->released_generation == c->generation;
  *how = g_strdup(vm->exit_how);
  g_mutex_unlock(&vm->lock);
  return ok;
}

static gboolean
stop_job(HelperJob *job, gpointer data, GError **error)
{
  StopCall *c = data;
  gboolean gone = helper_stop_ladder(job, &c->request);
  g_autofree char *how = NULL;
  if (!gone || !wait_released(c, &how)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "VM %s: QEMU is %s after SIGKILL (a device may be stuck in the kernel); "
                "check `lium-cvm status %s` and the kernel log",
                c->vm->name, gone ? "gone but not yet released" : "still running", c->vm->name);
    return FALSE;
  }
  helper_job_step(job, 1.0, "VM %s stopped: %s", c->vm->name, how);
  return TRUE;
}

static gboolean
handle_stop_vm(LcvmDbusManager *manager, GDBusMethodInvocation *inv, const char *name,
               guint timeout_s, guint64 flags, gpointer data)
{
  HelperDaemon *d = data;
  if (refuse_bad_name(inv, name) || refuse_unless_zero(inv, flags, LCVM_STOP_FORCE))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  Vm *vm = vm_lookup(d->vms, name);
  if (vm == NULL || vm->record == NULL) {
    g_autoptr(GError) error =
        g_error_new(LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s is not running (%s)", name,
                    vm ? vm_state(vm) : "the helper has not started it");
    helper_return_error(inv, error);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  StopCall *c = g_new0(StopCall, 1);
  c->vm = vm_ref(vm);
  c->qmp_path = helper_runtime_path(d->config, name, HELPER_RUNTIME_QMP);
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
    .force = (flags & LCVM_STOP_FORCE) != 0,
    .step = &vm->stop_step,
  };
  g_autofree char *lock = g_strdup_printf("vm:%s", name);
  const char *locks[] = { lock, NULL };
  if (helper_lock_held(d, lock)) {
    stop_call_free(c);
    return_busy(inv, vm, "wait for the running operation to finish");
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  vm_set_state(vm, LCVM_VM_STOPPING);
  helper_job_start(d, inv, "stop", locks, stop_job, c, stop_call_free);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- RemoveVm, ListVms ---- */

typedef struct {
  HelperDaemon *daemon;
  char *name;
  char *lock[2];
} RemoveCall;

static void
remove_call_free(gpointer p)
{
  RemoveCall *c = p;
  g_free(c->name);
  g_free(c->lock[0]);
  g_free(c);
}

static void
remove_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  RemoveCall *c = data;
  GError *error = NULL;
  if (helper_vm_remove_instance(c->daemon->config, c->name, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

static void
remove_done(GObject *source, GAsyncResult *res, gpointer data)
{
  GDBusMethodInvocation *inv = data;
  RemoveCall *c = g_task_get_task_data(G_TASK(res));
  HelperDaemon *d = c->daemon;
  g_autoptr(GError) error = NULL;
  helper_lock_release(d, (const char *const *)c->lock);
  if (g_task_propagate_boolean(G_TASK(res), &error)) {
    Vm *vm = vm_lookup(d->vms, c->name);
    if (vm != NULL)
      vm_forget(vm);
    helper_return_ok(inv, g_variant_new("()"));
  } else {
    helper_return_error(inv, error);
  }
  helper_daemon_release(d);
}

static gboolean
handle_remove_vm(LcvmDbusManager *manager, GDBusMethodInvocation *inv, const char *name,
                 guint64 flags, gpointer data)
{
  HelperDaemon *d = data;
  if (refuse_bad_name(inv, name) || refuse_unless_zero(inv, flags, 0))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  g_autofree char *hint = g_strdup_printf("stop it first (`lium-cvm stop %s`)", name);
  if (refuse_if_live(inv, d->vms, name, hint))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  RemoveCall *c = g_new0(RemoveCall, 1);
  c->daemon = d;
  c->name = g_strdup(name);
  c->lock[0] = g_strdup_printf("vm:%s", name);
  g_autoptr(GError) error = NULL;
  if (!helper_lock_acquire(d, (const char *const *)c->lock, "remove", &error)) {
    remove_call_free(c);
    helper_return_error(inv, error);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  helper_daemon_hold(d);
  g_autoptr(GTask) task = g_task_new(NULL, NULL, remove_done, inv);
  g_task_set_task_data(task, c, remove_call_free);
  g_task_run_in_thread(task, remove_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_vms(LcvmDbusManager *manager, GDBusMethodInvocation *inv, gpointer data)
{
  HelperDaemon *d = data;
  g_autoptr(GList) names = g_hash_table_get_keys(d->vms->by_name);
  names = g_list_sort(names, (GCompareFunc)g_strcmp0);
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("ao"));
  for (GList *l = names; l != NULL; l = l->next)
    g_variant_builder_add(&b, "o", vm_lookup(d->vms, l->data)->path);
  helper_return_ok(inv, g_variant_new("(ao)", &b));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---- re-adoption ---- */

/* A record whose QEMU is gone (or is not the recorded one): its VM failed while no helper
 * watched; what it held is given back now. */
static void
readopt_dead(HelperVms *vms, Vm *vm, const HelperRecord *record, const char *why)
{
  const LcvmConfig *config = vms->daemon->config;
  g_message("VM %s: not re-adopted: %s", vm->name, why);
  int bridge = record != NULL ? helper_bridge_adopt(record, NULL) : -1;
  if (bridge >= 0) {
    g_free(helper_bridge_stop(bridge));
    close(bridge);
  }
  if (record != NULL)
    helper_vm_release(config, vms->alloc, record);
  else
    helper_runtime_remove(config, vm->name, NULL);
  g_autofree char *message =
      g_strdup_printf("QEMU ended while the helper was not running (%s)", why);
  g_autoptr(HelperCrash) crash = helper_crash_new(config, vm->name, message);
  helper_crash_report(config, crash);
  lcvm_dbus_vm_set_boot_error(vm->skeleton, message);
  vm_show_crash(vm, crash);
  vm_set_state(vm, LCVM_VM_FAILED);
}

static void
readopt(HelperVms *vms, const char *name)
{
  g_autoptr(GError) error = NULL;
  Vm *vm = vm_get(vms, name, &error);
  if (vm == NULL) {
    g_warning("VM %s: cannot export its object: %s", name, error->message);
    return;
  }
  g_autoptr(HelperRecord) record = helper_record_load(vms->daemon->config, name, &error);
  int pidfd = record ? helper_process_adopt(record, &error) : -1;
  if (pidfd >= 0 && !helper_alloc_claim(vms->alloc, name, record->reservation, &error)) {
    /* Never kill it: a VM the helper cannot account for is reported, not destroyed. */
    g_warning("VM %s: QEMU (pid %d) runs but cannot be re-adopted: %s", name, (int)record->pid,
              error->message);
    close(pidfd);
    lcvm_dbus_vm_set_boot_error(vm->skeleton, error->message);
    vm_set_state(vm, LCVM_VM_FAILED);
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
  vm_supervise(vm, g_steal_pointer(&record), pidfd, bridge);
  if (bridge < 0) {
    g_autofree char *why = g_strdup_printf("was not running when the helper re-adopted the VM (%s)",
                                           bridge_error->message);
    vm_restart_bridge(vm, why);
  }
  vm_set_state(vm, LCVM_VM_STARTING);
  vm_check_qmp(vm);
}

/* A crash recorded by an earlier helper stays visible (never restarted). */
static void
show_recorded_crash(HelperVms *vms, const char *name)
{
  g_autoptr(HelperCrash) crash =
      vm_lookup(vms, name) ? NULL : helper_crash_load(vms->daemon->config, name);
  g_autoptr(GError) error = NULL;
  Vm *vm = crash ? vm_get(vms, name, &error) : NULL;
  if (vm == NULL)
    return;
  vm_show_crash(vm, crash);
  vm_set_state(vm, LCVM_VM_FAILED);
}

/* ---- export ---- */

/* Only EADDRINUSE makes a host-API port busy: the bridge binds 127.0.0.1:PORT. */
static gboolean
hostapi_port_free(guint16 port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return TRUE;
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(port) };
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  gboolean busy = bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno == EADDRINUSE;
  close(fd);
  return !busy;
}

char *
helper_vms_device_holder(HelperDaemon *d, const char *slot)
{
  if (d->vms == NULL)
    return NULL;
  g_autofree char *key = g_strdup_printf("device:%s", slot);
  return helper_alloc_holder(d->vms->alloc, key);
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
      if (((Vm *)value)->record != NULL)
        g_ptr_array_add(names, g_strdup(key));
  }
  g_ptr_array_add(names, NULL);
  return (GStrv)g_ptr_array_free(names, FALSE);
}

gboolean
helper_vm_export(HelperDaemon *d, GError **error)
{
  HelperVms *vms = g_new0(HelperVms, 1);
  vms->daemon = d;
  vms->alloc = helper_alloc_new(d->config, hostapi_port_free);
  helper_uid_cursor_load(d->config, vms->alloc);
  vms->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)vm_unref);
  d->vms = vms;
  g_signal_connect(d->manager, "handle-start-vm", G_CALLBACK(handle_start_vm), d);
  g_signal_connect(d->manager, "handle-stop-vm", G_CALLBACK(handle_stop_vm), d);
  g_signal_connect(d->manager, "handle-remove-vm", G_CALLBACK(handle_remove_vm), d);
  g_signal_connect(d->manager, "handle-list-vms", G_CALLBACK(handle_list_vms), d);
  g_auto(GStrv) names = helper_runtime_names(d->config);
  for (guint i = 0; names[i] != NULL; i++)
    readopt(vms, names[i]);
  g_auto(GStrv) crashed = helper_crash_names(d->config);
  for (guint i = 0; crashed[i] != NULL; i++)
    show_recorded_crash(vms, crashed[i]);
  return TRUE;
}
