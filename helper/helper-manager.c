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

static GVariant *
dry_run_call(HelperDaemon *d, gpointer data, GError **error)
{
  g_auto(GStrv) argv = dry_run(d->config, data, error);
  return argv ? g_variant_new("(^as)", argv) : NULL;
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
  helper_call_in_thread(d, inv, dry_run_call, g_strdup(name), g_free);
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
