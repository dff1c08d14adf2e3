/* SPDX-License-Identifier: MIT */
/* Option parsing, errors, output and lium-cvm's own programs. */
#include "cli.h"
#include "config.h"
#include "lcvm-error.h"
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

static char *
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
