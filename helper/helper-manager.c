/* SPDX-License-Identifier: MIT */
/* io.lium.Cvm1.Manager: the VMs, named by their definitions. DryRun runs the validation a
 * start runs (helper-instance: the definition read without following a symlink, limits,
 * compose hash, image, QEMU, host CPUs and memory, devices, ports) and answers with the argv a
 * start would execute and every reason this host would refuse it. It writes nothing, creates
 * no disk and reserves nothing. The authorizer already ran;
 * blocking work runs in a worker thread. */
#include "helper-authorizer.h"
#include "helper-daemon.h"
#include "helper-instance.h"
#include "lcvm-names.h"
#include "lcvm-validate.h"

/* The argv StartVm would run and why it would refuse to, after the same validation a start
 * runs. The vsock CID shown is the first of cid_range: a start takes the first free one. */
static GVariant *
dry_run_call(HelperDaemon *d, gpointer data, GError **error)
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
