/* SPDX-License-Identifier: MIT */
/* `lium-cvm load-modules [MODULE…] [--persist]`: asks the helper to load the vfio modules
 * (default vfio_pci and vfio_iommu_type1). */
#include "cli-client.h"
#include "cli.h"
#include "lcvm-names.h"
#include "lcvm-validate.h"
#include <stdio.h>

int
cmd_load_modules(LcvmCli *cli, int argc, char **argv)
{
  gboolean persist = FALSE;
  const GOptionEntry entries[] = {
    { "persist", 0, 0, G_OPTION_ARG_NONE, &persist, "Also load them at every boot (modules-load.d)",
      NULL },
    { NULL },
  };
  g_autofree char *allowed = g_strjoinv(", ", (char **)lcvm_module_allow_list());
  g_autofree char *desc = g_strdup_printf("Modules the helper loads: %s.", allowed);
  if (!cli_parse(cli, &argc, &argv, entries, "[MODULE…]", desc))
    return CLI_EXIT_USAGE;

  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  if (argc <= 1) {
    g_strv_builder_add(b, "vfio_pci");
    g_strv_builder_add(b, "vfio_iommu_type1");
  }
  for (int i = 1; i < argc; i++) {
    g_autofree char *name = lcvm_module_normalize(argv[i]);
    g_strv_builder_add(b, name);
  }
  g_auto(GStrv) modules = g_strv_builder_end(b);
  g_autoptr(GError) error = NULL;
  if (!cli_host_load_modules(cli, (const char *const *)modules, persist, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  g_autofree char *list = g_strjoinv(" ", modules);
  if (cli->json) {
    g_autoptr(JsonBuilder) jb = json_builder_new();
    json_builder_begin_object(jb);
    json_builder_set_member_name(jb, "loaded");
    json_builder_begin_array(jb);
    for (guint i = 0; modules[i]; i++)
      json_builder_add_string_value(jb, modules[i]);
    json_builder_end_array(jb);
    json_builder_set_member_name(jb, "persisted");
    json_builder_add_boolean_value(jb, persist);
    json_builder_end_object(jb);
    g_autoptr(JsonNode) root = json_builder_get_root(jb);
    cli_print_json(root);
  } else {
    printf("loaded: %s%s\n", list, persist ? " (also at boot)" : "");
  }
  return CLI_EXIT_OK;
}
