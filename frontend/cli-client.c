/* SPDX-License-Identifier: MIT */
/* The typed client of the helper (see cli-client.h): the bus, the one call path with the
 * password agent and the error hints, the method table, and one small function per method. */
#include "cli-client.h"
#include "lcvm-error.h"
#include "lcvm-names.h"
#include <unistd.h>

/* ---- the method table: every signature the frontend sends or expects, once ---- */

typedef enum {
  GET_INFO,
  LOAD_MODULES,
  SET_DMA_ENTRY_LIMIT,
  BIND_VFIO,
  UNBIND_VFIO,
  QUERY_GPU_MODE,
  SET_GPU_MODE,
  RESET_GPU,
  KEY_PROVIDER_STATUS,
  START_KEY_PROVIDER,
  BUILD_KEY_PROVIDER,
  STOP_KEY_PROVIDER,
  KEY_PROVIDER_LOGS,
  DRY_RUN,
  START_VM,
  STOP_VM,
  REMOVE_VM,
  LIST_VMS,
  N_METHODS,
} MethodId;

/* A Job-returning method answers its path. */
#define JOB "(o)"

static const CliMethod methods[N_METHODS + 1] = {
  [GET_INFO] = { LCVM_IFACE_HOST, "GetInfo", "()", "(@a{sv})" },
  [LOAD_MODULES] = { LCVM_IFACE_HOST, "LoadModules", "(^ast)", "()" },
  [SET_DMA_ENTRY_LIMIT] = { LCVM_IFACE_HOST, "SetDmaEntryLimit", "(tt)", "()" },
  [BIND_VFIO] = { LCVM_IFACE_HOST, "BindVfio", "(^ast)", JOB },
  [UNBIND_VFIO] = { LCVM_IFACE_HOST, "UnbindVfio", "(^ast)", JOB },
  [QUERY_GPU_MODE] = { LCVM_IFACE_HOST, "QueryGpuMode", "(s)", "(@a{sv})" },
  [SET_GPU_MODE] = { LCVM_IFACE_HOST, "SetGpuMode", "(ssst)", JOB },
  [RESET_GPU] = { LCVM_IFACE_HOST, "ResetGpu", "(st)", JOB },
  [KEY_PROVIDER_STATUS] = { LCVM_IFACE_HOST, "KeyProviderStatus", "()", "(@a{sv})" },
  [START_KEY_PROVIDER] = { LCVM_IFACE_HOST, "StartKeyProvider", "(t)", JOB },
  [BUILD_KEY_PROVIDER] = { LCVM_IFACE_HOST, "BuildKeyProvider", "(t)", JOB },
  [STOP_KEY_PROVIDER] = { LCVM_IFACE_HOST, "StopKeyProvider", "(t)", JOB },
  [KEY_PROVIDER_LOGS] = { LCVM_IFACE_HOST, "KeyProviderLogs", "(u)", "(s)" },
  [DRY_RUN] = { LCVM_IFACE_MANAGER, "DryRun", "(s)", "(^as@a(ss))" },
  [START_VM] = { LCVM_IFACE_MANAGER, "StartVm", "(st)", "(o)" },
  [STOP_VM] = { LCVM_IFACE_MANAGER, "StopVm", "(sut)", JOB },
  [REMOVE_VM] = { LCVM_IFACE_MANAGER, "RemoveVm", "(st)", "()" },
  [LIST_VMS] = { LCVM_IFACE_MANAGER, "ListVms", "()", "(^ao)" },
  [N_METHODS] = { NULL, NULL, NULL, NULL },
};

const CliMethod *
cli_client_methods(void)
{
  return methods;
}

char *
cli_client_format_type(const char *format)
{
  GString *type = g_string_new(NULL);
  for (const char *c = format; *c != '\0'; c++)
    if (*c != '^' && *c != '&' && *c != '@')
      g_string_append_c(type, *c);
  return g_string_free(type, FALSE);
}

/* ---- call ---- */

static gboolean
ensure_bus(LcvmCli *cli, GError **error)
{
  (void)LCVM_ERROR; /* registers the io.lium.Cvm1.Error names before the first reply */
  if (cli->bus != NULL)
    return TRUE;
  g_autoptr(GError) local = NULL;
  cli->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &local);
  if (cli->bus == NULL) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                "cannot connect to the system bus: %s (is dbus running?)", local->message);
    return FALSE;
  }
  return TRUE;
}

static void
explain_error(GError *error)
{
  if (g_dbus_error_is_remote_error(error)) {
    g_autofree char *name = g_dbus_error_get_remote_error(error);
    g_dbus_error_strip_remote_error(error);
    if (g_strcmp0(name, "org.freedesktop.DBus.Error.ServiceUnknown") == 0 ||
        g_strcmp0(name, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0) {
      g_autofree char *msg = g_strdup_printf(
          "the lium-cvm helper (%s) is not running and could not be started: is lium-cvm "
          "installed with its D-Bus service file? (%s)",
          LCVM_BUS_NAME, error->message);
      g_free(error->message);
      error->message = g_steal_pointer(&msg);
    }
  }
}

static gboolean
may_start_agent(LcvmCli *cli)
{
  return !cli->no_ask_password && geteuid() != 0 && isatty(STDIN_FILENO);
}

/* Calls method m with args (floating, consumed); on InteractiveAuthorizationRequired starts
 * pkttyagent (when allowed) and retries once. */
static GVariant *
call(LcvmCli *cli, const CliMethod *m, GVariant *args, GError **error)
{
  g_autoptr(GVariant) params = g_variant_ref_sink(args);
  g_autofree char *reply_type = cli_client_format_type(m->out);
  if (!ensure_bus(cli, error))
    return NULL;
  for (int attempt = 0;; attempt++) {
    g_autoptr(GError) local = NULL;
    GDBusCallFlags flags = cli->agent_running ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION
                                              : G_DBUS_CALL_FLAGS_NONE;
    GVariant *reply = g_dbus_connection_call_sync(
        cli->bus, LCVM_BUS_NAME, LCVM_OBJECT_PATH, m->iface, m->name, params,
        G_VARIANT_TYPE(reply_type), flags, cli->agent_running ? G_MAXINT : -1, NULL, &local);
    if (reply != NULL)
      return reply;
    gboolean needs_auth =
        g_error_matches(local, LCVM_ERROR, LCVM_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED);
    if (needs_auth && attempt == 0 && !cli->agent_running && may_start_agent(cli)) {
      g_autoptr(GError) agent_error = NULL;
      if (cli_agent_start(cli, &agent_error))
        continue;
      g_printerr("lium-cvm: cannot start the password agent: %s\n", agent_error->message);
    }
    explain_error(local);
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
  }
}

/* Calls method id with the C values its "in" format takes, then stores the reply into the
 * pointers its "out" format takes (all owned by the caller). */
static gboolean
invoke(LcvmCli *cli, MethodId id, GError **error, ...)
{
  const CliMethod *m = &methods[id];
  va_list ap;
  va_start(ap, error);
  GVariant *args = g_variant_new_va(m->in, NULL, &ap);
  g_autoptr(GVariant) reply = call(cli, m, args, error);
  if (reply != NULL)
    g_variant_get_va(reply, m->out, NULL, &ap);
  va_end(ap);
  return reply != NULL;
}

/* ---- call and follow the Job ---- */

static gboolean
invoke_job(LcvmCli *cli, MethodId id, GError **error, ...)
{
  const CliMethod *m = &methods[id];
  g_assert(g_str_equal(m->out, JOB));
  va_list ap;
  va_start(ap, error);
  GVariant *args = g_variant_new_va(m->in, NULL, &ap);
  va_end(ap);
  g_autoptr(GVariant) reply = call(cli, m, args, error);
  if (reply == NULL)
    return FALSE;
  const char *job = NULL;
  g_variant_get(reply, "(&o)", &job);
  return cli_follow_job(cli, job, error);
}

/* ---- properties ---- */

GVariant *
cli_properties(LcvmCli *cli, const char *path, const char *iface, GError **error)
{
  if (!ensure_bus(cli, error))
    return NULL;
  g_autoptr(GError) local = NULL;
  g_autoptr(GVariant) all =
      g_dbus_connection_call_sync(cli->bus, LCVM_BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                  "GetAll", g_variant_new("(s)", iface), G_VARIANT_TYPE("(a{sv})"),
                                  G_DBUS_CALL_FLAGS_NONE, -1, NULL, &local);
  if (all == NULL) {
    g_dbus_error_strip_remote_error(local);
    g_propagate_error(error, g_steal_pointer(&local));
    return NULL;
  }
  return g_variant_get_child_value(all, 0);
}

typedef struct {
  CliPropertiesChanged func;
  gpointer data;
} PropertiesWatch;

static void
on_properties_changed(GDBusConnection *bus, const char *sender, const char *path, const char *iface,
                      const char *signal, GVariant *params, gpointer data)
{
  PropertiesWatch *w = data;
  g_autoptr(GVariant) changed = NULL;
  g_variant_get(params, "(&s@a{sv}as)", NULL, &changed, NULL);
  w->func(changed, w->data);
}

guint
cli_properties_watch(LcvmCli *cli, const char *path, const char *iface, CliPropertiesChanged func,
                     gpointer data)
{
  PropertiesWatch *w = g_new(PropertiesWatch, 1);
  *w = (PropertiesWatch){ func, data };
  return g_dbus_connection_signal_subscribe(
      cli->bus, LCVM_BUS_NAME, "org.freedesktop.DBus.Properties", "PropertiesChanged", path, iface,
      G_DBUS_SIGNAL_FLAGS_NONE, on_properties_changed, w, g_free);
}

void
cli_properties_unwatch(LcvmCli *cli, guint watch)
{
  g_dbus_connection_signal_unsubscribe(cli->bus, watch);
}

/* ---- io.lium.Cvm1.Host ---- */

GVariant *
cli_host_get_info(LcvmCli *cli, GError **error)
{
  GVariant *info = NULL;
  return invoke(cli, GET_INFO, error, &info) ? info : NULL;
}

gboolean
cli_host_load_modules(LcvmCli *cli, const char *const *modules, gboolean persist, GError **error)
{
  return invoke(cli, LOAD_MODULES, error, modules, (guint64)(persist ? 1 : 0));
}

gboolean
cli_host_set_dma_entry_limit(LcvmCli *cli, guint64 limit, gboolean persist, GError **error)
{
  return invoke(cli, SET_DMA_ENTRY_LIMIT, error, limit, (guint64)(persist ? 1 : 0));
}

gboolean
cli_host_bind_vfio(LcvmCli *cli, const char *const *slots, GError **error)
{
  return invoke_job(cli, BIND_VFIO, error, slots, (guint64)0);
}

gboolean
cli_host_unbind_vfio(LcvmCli *cli, const char *const *slots, GError **error)
{
  return invoke_job(cli, UNBIND_VFIO, error, slots, (guint64)0);
}

GVariant *
cli_host_query_gpu_mode(LcvmCli *cli, const char *slot, GError **error)
{
  GVariant *mode = NULL;
  return invoke(cli, QUERY_GPU_MODE, error, slot, &mode) ? mode : NULL;
}

gboolean
cli_host_set_gpu_mode(LcvmCli *cli, const char *slot, const char *cc, const char *ppcie,
                      GError **error)
{
  return invoke_job(cli, SET_GPU_MODE, error, slot, cc, ppcie, (guint64)0);
}

gboolean
cli_host_reset_gpu(LcvmCli *cli, const char *slot, guint64 flags, GError **error)
{
  return invoke_job(cli, RESET_GPU, error, slot, flags);
}

GVariant *
cli_host_key_provider_status(LcvmCli *cli, GError **error)
{
  GVariant *status = NULL;
  return invoke(cli, KEY_PROVIDER_STATUS, error, &status) ? status : NULL;
}

gboolean
cli_host_start_key_provider(LcvmCli *cli, GError **error)
{
  return invoke_job(cli, START_KEY_PROVIDER, error, (guint64)0);
}

gboolean
cli_host_build_key_provider(LcvmCli *cli, GError **error)
{
  return invoke_job(cli, BUILD_KEY_PROVIDER, error, (guint64)0);
}

gboolean
cli_host_stop_key_provider(LcvmCli *cli, GError **error)
{
  return invoke_job(cli, STOP_KEY_PROVIDER, error, (guint64)0);
}

char *
cli_host_key_provider_logs(LcvmCli *cli, guint32 lines, GError **error)
{
  char *text = NULL;
  return invoke(cli, KEY_PROVIDER_LOGS, error, lines, &text) ? text : NULL;
}

/* ---- io.lium.Cvm1.Manager ---- */

gboolean
cli_manager_dry_run(LcvmCli *cli, const char *name, GStrv *argv, GVariant **refusals,
                    GError **error)
{
  return invoke(cli, DRY_RUN, error, name, argv, refusals);
}

char *
cli_manager_start_vm(LcvmCli *cli, const char *name, GError **error)
{
  char *path = NULL;
  return invoke(cli, START_VM, error, name, (guint64)0, &path) ? path : NULL;
}

gboolean
cli_manager_stop_vm(LcvmCli *cli, const char *name, guint32 timeout_s, guint64 flags,
                    GError **error)
{
  return invoke_job(cli, STOP_VM, error, name, timeout_s, flags);
}

gboolean
cli_manager_remove_vm(LcvmCli *cli, const char *name, GError **error)
{
  return invoke(cli, REMOVE_VM, error, name, (guint64)0);
}

GStrv
cli_manager_list_vms(LcvmCli *cli, GError **error)
{
  GStrv paths = NULL;
  return invoke(cli, LIST_VMS, error, &paths) ? paths : NULL;
}
