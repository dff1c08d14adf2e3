/* SPDX-License-Identifier: MIT */
/* Option parsing, errors and the call path to the helper. */
#include "cli.h"
#include "config.h"
#include "lcvm-error.h"
#include "lcvm-names.h"
#include "lcvm-text.h"
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

gboolean
cli_parse(LcvmCli *cli, int *argc, char ***argv, const GOptionEntry *entries, const char *params,
          const char *description)
{
  const GOptionEntry global[] = {
    { "json", 0, 0, G_OPTION_ARG_NONE, &cli->json, "Machine-readable JSON output", NULL },
    { "no-ask-password", 0, 0, G_OPTION_ARG_NONE, &cli->no_ask_password,
      "Never ask for a password; fail if authorization needs one", NULL },
    { "config", 0, 0, G_OPTION_ARG_FILENAME, &cli->config_path,
      "Configuration file (default: $LIUM_CVM_CONFIG or " LCVM_DEFAULT_CONFIG ")", "FILE" },
    { NULL },
  };
  g_autofree char *prog = g_strdup_printf("lium-cvm %s", cli->verb);
  g_set_prgname(prog);
  g_autoptr(GOptionContext) ctx = g_option_context_new(params);
  g_autoptr(GError) error = NULL;

  if (entries != NULL)
    g_option_context_add_main_entries(ctx, entries, NULL);
  g_option_context_add_main_entries(ctx, global, NULL);
  if (description != NULL)
    g_option_context_set_description(ctx, description);
  g_option_context_set_strict_posix(ctx, FALSE);
  if (!g_option_context_parse(ctx, argc, argv, &error)) {
    g_printerr("lium-cvm %s: %s (see 'lium-cvm %s --help')\n", cli->verb, error->message,
               cli->verb);
    return FALSE;
  }

  const char *path = cli->config_path ? cli->config_path : g_getenv("LIUM_CVM_CONFIG");
  if (path == NULL && g_file_test(LCVM_DEFAULT_CONFIG, G_FILE_TEST_EXISTS))
    path = LCVM_DEFAULT_CONFIG;
  lcvm_config_free(cli->config);
  cli->config = path ? lcvm_config_load(path, &error) : lcvm_config_new_default();
  if (cli->config == NULL) {
    g_printerr("lium-cvm: %s\n", error->message);
    return FALSE;
  }
  return TRUE;
}

int
cli_fail(LcvmCli *cli, int status, const GError *error)
{
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error");
    json_builder_add_string_value(b, error->message);
    if (error->domain == LCVM_ERROR) {
      json_builder_set_member_name(b, "error_name");
      json_builder_add_string_value(b, lcvm_error_dbus_name(error->code));
    }
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
  }
  /* A message may quote QEMU or the guest: a terminal gets it escaped. */
  GString *escaped = g_string_new(NULL);
  if (isatty(STDERR_FILENO))
    lcvm_text_append_for_tty(escaped, error->message, -1);
  else
    g_string_append(escaped, error->message);
  /* Freed into a plain string: GCC 14's -Wnull-dereference does not trust escaped->str. */
  g_autofree char *shown = g_string_free(escaped, FALSE);
  g_printerr("lium-cvm: %s\n", shown);
  return status;
}

gboolean
cli_escapes_stdout(LcvmCli *cli)
{
  return !cli->raw && isatty(STDOUT_FILENO);
}

char *
cli_text_for_stdout(LcvmCli *cli, const char *text)
{
  if (!cli_escapes_stdout(cli))
    return g_strdup(text);
  GString *out = g_string_new(NULL);
  lcvm_text_append_for_tty(out, text, -1);
  return g_string_free(out, FALSE);
}

int
cli_failf(LcvmCli *cli, int status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_autoptr(GError) error = g_error_new_literal(LCVM_ERROR, LCVM_ERROR_FAILED, msg);
  return cli_fail(cli, status, error);
}

void
cli_print_json(JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_indent(gen, 2);
  json_generator_set_root(gen, node);
  g_autofree char *text = json_generator_to_data(gen, NULL);
  printf("%s\n", text);
  fflush(stdout);
}

static gboolean
ensure_bus(LcvmCli *cli, GError **error)
{
  if (cli->bus != NULL)
    return TRUE;
  (void)LCVM_ERROR; /* registers the io.lium.Cvm1.Error names before the first reply */
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

GVariant *
cli_call(LcvmCli *cli, const char *iface, const char *method, GVariant *params,
         const GVariantType *reply_type, GError **error)
{
  g_autoptr(GVariant) args = params ? g_variant_ref_sink(params) : NULL;
  if (!ensure_bus(cli, error))
    return NULL;
  for (int attempt = 0;; attempt++) {
    g_autoptr(GError) local = NULL;
    GDBusCallFlags flags = cli->agent_running ? G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION
                                              : G_DBUS_CALL_FLAGS_NONE;
    GVariant *reply = g_dbus_connection_call_sync(cli->bus, LCVM_BUS_NAME, LCVM_OBJECT_PATH, iface,
                                                  method, args, reply_type, flags,
                                                  cli->agent_running ? G_MAXINT : -1, NULL, &local);
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

char *
cli_libexec_path(const char *program)
{
  const char *dir = g_getenv("LIUM_CVM_LIBEXECDIR");
  if (dir != NULL && *dir != '\0')
    return g_build_filename(dir, program, NULL);
  /* A build tree keeps every program beside lium-cvm; an installed lium-cvm lives in bindir. */
  g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
  g_autofree char *self_dir = self ? g_path_get_dirname(self) : NULL;
  g_autofree char *beside = self_dir ? g_build_filename(self_dir, program, NULL) : NULL;
  if (beside != NULL && g_strcmp0(self_dir, LCVM_BINDIR) != 0 &&
      g_file_test(beside, G_FILE_TEST_IS_EXECUTABLE))
    return g_steal_pointer(&beside);
  return g_build_filename(LCVM_LIBEXECDIR, program, NULL);
}

int
cli_run_libexec(LcvmCli *cli, const char *program, char **argv)
{
  g_autofree char *path = cli_libexec_path(program);
  g_autoptr(GPtrArray) args = g_ptr_array_new();
  g_ptr_array_add(args, path);
  for (guint i = 1; argv[i] != NULL; i++)
    g_ptr_array_add(args, argv[i]);
  g_ptr_array_add(args, NULL);
  g_autoptr(GError) error = NULL;
  int wait_status = 0;
  if (!g_spawn_sync(NULL, (char **)args->pdata, NULL, G_SPAWN_CHILD_INHERITS_STDIN, NULL, NULL,
                    NULL, NULL, &wait_status, &error))
    return cli_failf(cli, CLI_EXIT_USAGE, "cannot run %s: %s (is lium-cvm fully installed?)", path,
                     error->message);
  if (WIFEXITED(wait_status))
    return WEXITSTATUS(wait_status);
  return cli_failf(cli, CLI_EXIT_FAILED, "%s was killed by signal %d", program,
                   WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0);
}
