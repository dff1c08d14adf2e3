/* SPDX-License-Identifier: MIT */
/* `lium-cvm version`: the frontend's version and, when the helper answers, its version,
 * configuration and capabilities (GetInfo, allowed to everyone). */
#include "cli-client.h"
#include "cli.h"
#include "config.h"
#include "lcvm-names.h"
#include <stdio.h>

static void
add_variant_dict(JsonBuilder *b, GVariant *dict)
{
  GVariantIter it;
  const char *key;
  GVariant *value;
  json_builder_begin_object(b);
  g_variant_iter_init(&it, dict);
  while (g_variant_iter_next(&it, "{&sv}", &key, &value)) {
    json_builder_set_member_name(b, key);
    json_builder_add_value(b, json_gvariant_serialize(value));
    g_variant_unref(value);
  }
  json_builder_end_object(b);
}

int
cmd_version(LcvmCli *cli, int argc, char **argv)
{
  if (!cli_parse(cli, &argc, &argv, NULL, NULL, NULL))
    return CLI_EXIT_USAGE;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) info = cli_host_get_info(cli, &error);

  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "frontend_version");
    json_builder_add_string_value(b, LCVM_VERSION);
    json_builder_set_member_name(b, "helper");
    if (info != NULL)
      add_variant_dict(b, info);
    else
      json_builder_add_null_value(b);
    if (error != NULL) {
      json_builder_set_member_name(b, "helper_error");
      json_builder_add_string_value(b, error->message);
    }
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
    return info ? CLI_EXIT_OK : CLI_EXIT_FAILED;
  }

  printf("lium-cvm %s\n", LCVM_VERSION);
  if (info == NULL) {
    printf("helper: unavailable (%s)\n", error->message);
    return CLI_EXIT_FAILED;
  }
  const char *version = "?";
  g_variant_lookup(info, "version", "&s", &version);
  printf("helper: lium-cvm-helper %s on %s\n", version, LCVM_BUS_NAME);
  g_autoptr(GVariant) caps = g_variant_lookup_value(info, "capabilities", G_VARIANT_TYPE("a{sb}"));
  if (caps != NULL) {
    GVariantIter it;
    const char *name;
    gboolean present;
    printf("capabilities:");
    g_variant_iter_init(&it, caps);
    while (g_variant_iter_next(&it, "{&sb}", &name, &present))
      printf(" %s=%s", name, present ? "yes" : "no");
    printf("\n");
  }
  return CLI_EXIT_OK;
}
