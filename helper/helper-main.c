/* SPDX-License-Identifier: MIT */
/* lium-cvm-helper: the root helper on the system bus. It reads its configuration only from
 * --config (set by its unit or a test harness, never by a caller), owns io.lium.Cvm1 and
 * exports the object every privileged act goes through. */
#include "config.h"
#include "helper-audit.h"
#include "helper-daemon.h"
#include "lcvm-error.h"
#include "lcvm-names.h"
#include <glib-unix.h>
#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>

typedef struct {
  HelperDaemon *daemon;
  int exit_code;
} HelperMain;

/* The daemon's state lives as long as the process: worker threads may still use it while the
 * process exits, and what it holds stays reachable (LeakSanitizer reports only what nothing
 * points to). */
static HelperDaemon daemon_state;

/* SIGTERM (systemctl stop) and SIGINT end the helper as its idle exit does: the main loop
 * returns and the audit log is flushed. VMs are never stopped by it: QEMU runs in its own scope
 * and the next helper re-adopts it. */
static gboolean
on_stop_signal(gpointer data)
{
  HelperMain *m = data;
  g_message("stop requested by a signal, exiting; running VMs keep running");
  g_main_loop_quit(m->daemon->loop);
  return G_SOURCE_CONTINUE;
}

static void
on_bus_acquired(GDBusConnection *bus, const char *name, gpointer data)
{
  HelperMain *m = data;
  HelperDaemon *d = m->daemon;
  d->bus = g_object_ref(bus);
  g_autoptr(GError) error = NULL;
  if (!helper_daemon_export(d, &error)) {
    g_printerr("lium-cvm-helper: cannot export %s: %s\n", LCVM_OBJECT_PATH, error->message);
    m->exit_code = 1;
    g_main_loop_quit(d->loop);
  }
}

static void
on_name_acquired(GDBusConnection *bus, const char *name, gpointer data)
{
  HelperMain *m = data;
  g_message("lium-cvm-helper %s owns %s", LCVM_VERSION, name);
  helper_daemon_hold(m->daemon);
  helper_daemon_release(m->daemon); /* arms the idle timer */
}

static void
on_name_lost(GDBusConnection *bus, const char *name, gpointer data)
{
  HelperMain *m = data;
  g_printerr("lium-cvm-helper: lost or could not own %s on the system bus (is another helper "
             "running, and does the bus policy let root own it?)\n",
             name);
  m->exit_code = 1;
  g_main_loop_quit(m->daemon->loop);
}

int
main(int argc, char **argv)
{
  g_autofree char *config_path = NULL;
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, "Configuration file", "FILE" },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- lium-cvm privileged helper");
  g_autoptr(GError) error = NULL;

  setlocale(LC_ALL, "C.UTF-8");
  umask(022);
  g_option_context_add_main_entries(ctx, entries, NULL);
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    g_printerr("lium-cvm-helper: %s\n", error->message);
    return 2;
  }
  if (version) {
    g_print("lium-cvm-helper %s\n", LCVM_VERSION);
    return 0;
  }
  if (config_path == NULL)
    config_path = g_strdup(LCVM_DEFAULT_CONFIG);

  HelperDaemon *d = &daemon_state;
  LcvmConfig *config = lcvm_config_load(config_path, &error);
  if (config == NULL) {
    g_printerr("lium-cvm-helper: refusing to start: %s\n", error->message);
    return 1;
  }
  (void)LCVM_ERROR; /* registers the io.lium.Cvm1.Error names before the first reply */
  d->authority = polkit_authority_get_sync(NULL, &error);
  if (d->authority == NULL) {
    g_printerr("lium-cvm-helper: cannot reach polkit: %s\n", error->message);
    return 1;
  }
  helper_daemon_init(d, config);

  HelperMain m = { .daemon = d };
  g_unix_signal_add(SIGTERM, on_stop_signal, &m);
  g_unix_signal_add(SIGINT, on_stop_signal, &m);
  guint owner = g_bus_own_name(G_BUS_TYPE_SYSTEM, LCVM_BUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
                               on_bus_acquired, on_name_acquired, on_name_lost, &m, NULL);
  g_main_loop_run(d->loop);
  helper_audit_flush();
  g_bus_unown_name(owner);
  /* d's state is not freed: a GDBus worker may still be authorizing a call with it, and the
   * process ends here anyway. */
  return m.exit_code;
}
