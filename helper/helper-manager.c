/* io.lium.Cvm1.Manager: the VMs, named by their definitions. DryRun runs the validation a
 * start runs (helper-instance: the definition read without following a symlink, limits,
 * compose hash, image, QEMU, devices, ports) and answers with the argv a start would execute.
 * It writes nothing, creates no disk and reserves nothing. The authorizer already ran;
 * blocking work runs in a worker thread. */
#include "helper-authorizer.h"
#include "helper-daemon.h"
#include "helper-instance.h"
#include "lcvm-names.h"
#include "lcvm-validate.h"

/* The argv StartVm would run, after the same validation a start runs. The vsock CID shown is
 * the first of cid_range: a start takes the first free one. */
static GStrv
dry_run(const LcvmConfig *config, const char *name, GError **error)
{
  g_autoptr(HelperDefinition) def = helper_instance_validate(config, name, error);
  if (!def)
    return NULL;
  g_autoptr(LcvmQemuSpec) spec =
      helper_instance_spec(config, def, (guint)config->cid_range.min, error);
  return spec ? lcvm_qemu_argv_build(spec, error) : NULL;
}

typedef struct {
  HelperDaemon *daemon;
  char *name;
} DryRunCall;

static void
dry_run_call_free(gpointer p)
{
  DryRunCall *c = p;
  g_free(c->name);
  g_free(c);
}

static void
dry_run_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
  DryRunCall *c = data;
  GError *error = NULL;
  GStrv argv = dry_run(c->daemon->config, c->name, &error);
  if (argv)
    g_task_return_pointer(task, argv, (GDestroyNotify)g_strfreev);
  else
    g_task_return_error(task, error);
}

static void
dry_run_done(GObject *source, GAsyncResult *res, gpointer data)
{
  GDBusMethodInvocation *inv = data;
  DryRunCall *c = g_task_get_task_data(G_TASK(res));
  HelperDaemon *d = c->daemon;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = g_task_propagate_pointer(G_TASK(res), &error);
  if (argv)
    helper_return_ok(inv, g_variant_new("(^as)", argv));
  else
    helper_return_error(inv, error);
  helper_daemon_release(d);
}

static gboolean
handle_dry_run(LcvmDbusManager *manager, GDBusMethodInvocation *inv, const char *name,
               gpointer data)
{
  HelperDaemon *d = data;
  g_autoptr(GError) error = NULL;
  if (!lcvm_vm_name_valid(name, &error)) {
    helper_return_error(inv, error);
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  }
  DryRunCall *c = g_new0(DryRunCall, 1);
  c->daemon = d;
  c->name = g_strdup(name);
  helper_daemon_hold(d);
  g_autoptr(GTask) task = g_task_new(NULL, NULL, dry_run_done, inv);
  g_task_set_task_data(task, c, dry_run_call_free);
  g_task_run_in_thread(task, dry_run_thread);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

gboolean
helper_manager_export(HelperDaemon *d, GError **error)
{
  d->manager = lcvm_dbus_manager_skeleton_new();
  g_signal_connect(d->manager, "handle-dry-run", G_CALLBACK(handle_dry_run), d);
  helper_authorizer_attach(d, G_DBUS_INTERFACE_SKELETON(d->manager));
  return g_dbus_interface_skeleton_export(G_DBUS_INTERFACE_SKELETON(d->manager), d->bus,
                                          LCVM_OBJECT_PATH, error);
}
