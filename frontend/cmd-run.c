/* SPDX-License-Identifier: MIT */
/* `lium-cvm run NAME --dry-run`: the exact QEMU argv the helper would execute for a VM, one
 * argument per line on stdout, then on stderr every reason the helper would refuse to start
 * it on this host now (exit 1 when there is one) — so it answers on any machine, also one
 * that could never run the VM. --json: one object {"argv", "refusals"}. The helper builds the
 * argv with the one argv builder and touches nothing while doing so. Without --dry-run the
 * start itself (cmd-vmrun.c). */
#include "cli-attestation.h"
#include "cli-client.h"
#include "cli.h"
#include "lcvm-names.h"
#include "lcvm-validate.h"
#include <stdio.h>

static void
add_strings(JsonBuilder *b, const char *member, const char *const *values)
{
  json_builder_set_member_name(b, member);
  json_builder_begin_array(b);
  for (guint i = 0; values[i]; i++)
    json_builder_add_string_value(b, values[i]);
  json_builder_end_array(b);
}

/* {"argv": [...], "refusals": [{"error_name": …, "message": …}, …]} */
static void
print_dry_run_json(const char *const *argv, GVariantIter *refusals)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  add_strings(b, "argv", argv);
  json_builder_set_member_name(b, "refusals");
  json_builder_begin_array(b);
  const char *name = NULL, *message = NULL;
  while (g_variant_iter_next(refusals, "(&s&s)", &name, &message)) {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error_name");
    json_builder_add_string_value(b, name);
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, message);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  cli_print_json(root);
}

/* The argv on stdout, one argument per line; every refusal on stderr after it. */
static void
print_dry_run_text(const char *name, const char *const *argv, GVariantIter *refusals)
{
  for (guint i = 0; argv[i]; i++)
    printf("%s\n", argv[i]);
  fflush(stdout);
  const char *error_name = NULL, *message = NULL;
  for (guint i = 0; g_variant_iter_next(refusals, "(&s&s)", &error_name, &message); i++) {
    if (i == 0)
      g_printerr("`lium-cvm run %s` would be refused on this host:\n", name);
    g_printerr("  - %s\n", message);
  }
}

int
cmd_run(LcvmCli *cli, int argc, char **argv)
{
  gboolean dry_run = FALSE;
  gboolean attach = FALSE;
  const GOptionEntry entries[] = {
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run,
      "Print the QEMU command line, one argument per line, and every reason this host would "
      "refuse it (exit 1 when there is one); start nothing",
      NULL },
    { "attach", 'a', 0, G_OPTION_ARG_NONE, &attach,
      "Follow the serial console after the start; Ctrl-C detaches, the VM keeps running", NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "NAME",
                 "Starts a VM through the helper, printing each step: its GPUs go to vfio-pci, "
                 "then QEMU starts confined. --dry-run prints the command line instead."))
    return CLI_EXIT_USAGE;
  if (argc != 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "usage: lium-cvm run NAME [--attach] [--dry-run]");
  g_autoptr(GError) error = NULL;
  if (!lcvm_vm_name_valid(argv[1], &error))
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  if (dry_run && attach)
    return cli_failf(cli, CLI_EXIT_USAGE, "--attach starts the VM; --dry-run starts nothing");
  if (!dry_run && !cli_attestation_gate_vm(cli, argv[1], &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (!dry_run)
    return cli_vm_run(cli, argv[1], attach);
  g_auto(GStrv) args = NULL;
  g_autoptr(GVariant) refusals = NULL;
  if (!cli_manager_dry_run(cli, argv[1], &args, &refusals, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  GVariantIter it;
  g_variant_iter_init(&it, refusals);
  if (cli->json)
    print_dry_run_json((const char *const *)args, &it);
  else
    print_dry_run_text(argv[1], (const char *const *)args, &it);
  return g_variant_n_children(refusals) > 0 ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}
