/* `lium-cvm run NAME --dry-run`: the exact QEMU argv the helper would execute for a VM, one
 * argument per line on stdout and nothing else (a JSON array with --json). The helper builds
 * it with the one argv builder and touches nothing while doing so. Without --dry-run the
 * start itself (cmd-vmrun.c). */
#include "cli.h"
#include "lcvm-names.h"
#include "lcvm-validate.h"
#include <stdio.h>

static void
print_argv(LcvmCli *cli, const char *const *argv)
{
  if (!cli->json) {
    for (guint i = 0; argv[i]; i++)
      printf("%s\n", argv[i]);
    return;
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_array(b);
  for (guint i = 0; argv[i]; i++)
    json_builder_add_string_value(b, argv[i]);
  json_builder_end_array(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  cli_print_json(root);
}

int
cmd_run(LcvmCli *cli, int argc, char **argv)
{
  gboolean dry_run = FALSE;
  gboolean attach = FALSE;
  const GOptionEntry entries[] = {
    { "dry-run", 0, 0, G_OPTION_ARG_NONE, &dry_run,
      "Print the QEMU command line, one argument per line, and start nothing", NULL },
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
  if (!dry_run)
    return cli_vm_run(cli, argv[1], attach);
  g_autoptr(GVariant) reply =
      cli_call(cli, LCVM_IFACE_MANAGER, "DryRun", g_variant_new("(s)", argv[1]),
               G_VARIANT_TYPE("(as)"), &error);
  if (!reply)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  g_autofree const char **args = NULL;
  g_variant_get(reply, "(^a&s)", &args);
  print_argv(cli, args);
  return CLI_EXIT_OK;
}
