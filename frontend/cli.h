/* SPDX-License-Identifier: MIT */
/* The frontend's shared state and helpers: option parsing common to every verb, errors,
 * output. The calls to the helper are in cli-client.h. Commands live in cmd-<verb>.c and are
 * listed once, in lium-cvm.c. */
#pragma once
#include "lcvm-config.h"
#include <gio/gio.h>
#include <json-glib/json-glib.h>

/* Exit statuses of every command. */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_FAILED = 1, /* the operation failed, or the host is not ready */
  CLI_EXIT_USAGE = 2,  /* bad usage, or the command itself could not run */
};

typedef struct {
  gboolean json;
  gboolean no_ask_password;
  gboolean raw; /* --raw (status, logs): guest text to a terminal unescaped */
  char *config_path;
  LcvmConfig *config;
  GDBusConnection *bus;
  GPid agent_pid;
  gboolean agent_running;
  const char *verb;
} LcvmCli;

typedef struct {
  const char *verb;
  const char *args;    /* usage after the verb */
  const char *summary; /* one line for `help` */
  int (*run)(LcvmCli *cli, int argc, char **argv);
} LcvmCommand;

/* Parses argv (argv[0] is the verb) with the verb's entries plus the global ones, then
 * loads the configuration. On failure prints the error and returns FALSE. */
gboolean cli_parse(LcvmCli *cli, int *argc, char ***argv, const GOptionEntry *entries,
                   const char *params, const char *description);

/* Prints "lium-cvm: <message>" on stderr and returns the exit status given. */
int cli_fail(LcvmCli *cli, int status, const GError *error);
int cli_failf(LcvmCli *cli, int status, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Text a guest or QEMU wrote, as stdout may show it: on a terminal (unless --raw), C0 and C1
 * controls other than newline and tab, and bytes that are not UTF-8, escaped as \xNN. */
gboolean cli_escapes_stdout(LcvmCli *cli);
char *cli_text_for_stdout(LcvmCli *cli, const char *text);

/* Prints a JSON node (pretty) and a newline on stdout. */
void cli_print_json(JsonNode *node);

/* Runs lium-cvm's own program in libexecdir (LIUM_CVM_LIBEXECDIR overrides; a build tree keeps
 * them beside lium-cvm) with argv[1…] (argv[0] is the verb) and returns its exit status. */
int cli_run_libexec(LcvmCli *cli, const char *program, char **argv);

/* Agent (cli-agent.c). */
gboolean cli_agent_start(LcvmCli *cli, GError **error);
void cli_agent_stop(LcvmCli *cli);

/* Commands. */
int cmd_check(LcvmCli *cli, int argc, char **argv);
int cmd_version(LcvmCli *cli, int argc, char **argv);
int cmd_load_modules(LcvmCli *cli, int argc, char **argv);
int cmd_lsgpu(LcvmCli *cli, int argc, char **argv);
int cmd_gpu(LcvmCli *cli, int argc, char **argv);
int cmd_key_provider(LcvmCli *cli, int argc, char **argv);
int cmd_download(LcvmCli *cli, int argc, char **argv); /* in lium-cvm-download only */
int cmd_download_run(LcvmCli *cli, int argc, char **argv);
int cmd_images(LcvmCli *cli, int argc, char **argv);
int cmd_new(LcvmCli *cli, int argc, char **argv);
int cmd_list(LcvmCli *cli, int argc, char **argv);
int cmd_inventory(LcvmCli *cli, int argc, char **argv);
int cmd_show(LcvmCli *cli, int argc, char **argv);
int cmd_hash(LcvmCli *cli, int argc, char **argv);
int cmd_rm(LcvmCli *cli, int argc, char **argv);
int cmd_run(LcvmCli *cli, int argc, char **argv);
int cmd_stop(LcvmCli *cli, int argc, char **argv);
int cmd_status(LcvmCli *cli, int argc, char **argv);
int cmd_logs(LcvmCli *cli, int argc, char **argv);
int cmd_metrics(LcvmCli *cli, int argc, char **argv);
/* Running VMs (cmd-vmrun.c): `run NAME` without --dry-run, and the live properties of every
 * VM the helper knows (name → its Vm properties, a{sv}; empty when the helper cannot be
 * asked). */
int cli_vm_run(LcvmCli *cli, const char *name, gboolean attach);
GHashTable *cli_vm_live_properties(LcvmCli *cli);
