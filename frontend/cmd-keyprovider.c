/* SPDX-License-Identifier: MIT */
/* `lium-cvm key-provider status|start|stop|logs`: the SGX key provider, through the helper
 * (docker needs root). Nothing here runs docker or reads the compose directory itself. */
#include "cli-client.h"
#include "cli.h"
#include "lcvm-names.h"
#include <stdio.h>
#include <string.h>

static gboolean
lookup_bool(GVariant *dict, const char *key)
{
  gboolean value = FALSE;
  g_variant_lookup(dict, key, "b", &value);
  return value;
}

static void
print_strings(GVariant *dict, const char *key, const char *title)
{
  g_autoptr(GVariant) list = g_variant_lookup_value(dict, key, G_VARIANT_TYPE("as"));
  if (list == NULL || g_variant_n_children(list) == 0)
    return;
  printf("%s\n", title);
  GVariantIter it;
  const char *s;
  g_variant_iter_init(&it, list);
  while (g_variant_iter_next(&it, "&s", &s))
    printf("  - %s\n", s);
}

static const char *
short_id(const char *id)
{
  const char *colon = strchr(id, ':');
  return colon ? colon + 1 : id;
}

static void
print_containers(GVariant *dict)
{
  g_autoptr(GVariant) list = g_variant_lookup_value(dict, "containers", G_VARIANT_TYPE("aa{sv}"));
  printf("  %-28s %-30s %-9s %-8s %s\n", "CONTAINER", "SERVICE", "STATE", "RESTARTS", "IMAGE");
  for (gsize i = 0; list != NULL && i < g_variant_n_children(list); i++) {
    g_autoptr(GVariant) c = g_variant_get_child_value(list, i);
    const char *name = "", *service = "", *state = "", *image = "", *image_id = "";
    gint64 restarts = 0;
    g_variant_lookup(c, "name", "&s", &name);
    g_variant_lookup(c, "service", "&s", &service);
    g_variant_lookup(c, "state", "&s", &state);
    g_variant_lookup(c, "image", "&s", &image);
    g_variant_lookup(c, "image_id", "&s", &image_id);
    g_variant_lookup(c, "restart_count", "x", &restarts);
    printf("  %-28s %-30s %-9s %-8" G_GINT64_FORMAT " %s (%.12s)\n", name, service, state, restarts,
           image, short_id(image_id));
  }
  if (list == NULL || g_variant_n_children(list) == 0)
    printf("  (no containers)\n");
}

static void
print_status(GVariant *dict)
{
  const char *file = "", *address = "";
  g_variant_lookup(dict, "compose_file", "&s", &file);
  g_variant_lookup(dict, "address", "&s", &address);
  printf("Key provider: %s\n", lookup_bool(dict, "ready") ? "ready" : "NOT READY");
  printf("  compose file:    %s\n", file);
  printf("  address:         %s (%s)\n", address,
         lookup_bool(dict, "port_answering") ? "answering" : "not answering");
  printf("  PRODUCTION mode: %s\n", lookup_bool(dict, "production_mode") ? "seen" : "not seen");
  printf("  pinned images:   %s\n", lookup_bool(dict, "pin_matches") ? "running" : "not running");
  const char *mrenclave = "";
  g_variant_lookup(dict, "mrenclave", "&s", &mrenclave);
  printf("  MRENCLAVE:       %s\n", mrenclave[0] ? mrenclave : "unknown (not in the recent logs)");
  print_containers(dict);
  g_autoptr(GVariant) pin = g_variant_lookup_value(dict, "pinned", G_VARIANT_TYPE("a{ss}"));
  GVariantIter it;
  const char *image, *id;
  g_variant_iter_init(&it, pin);
  while (pin != NULL && g_variant_iter_next(&it, "{&s&s}", &image, &id))
    printf("  pin: %s = %s\n", image, id);
  print_strings(dict, "data_disks", "VMs with a data disk (bound to the pinned enclave):");
  print_strings(dict, "enclave_errors", "Enclave errors in the recent logs:");
  print_strings(dict, "problems", "Problems:");
}

static int
key_provider_status(LcvmCli *cli, int argc, char **argv)
{
  if (!cli_parse(cli, &argc, &argv, NULL, "",
                 "Shows the key provider's containers, images, pin, port and enclave state.\n"
                 "Exit status 0 when it is ready for VMs, 1 when not."))
    return CLI_EXIT_USAGE;
  if (argc > 1)
    return cli_failf(cli, CLI_EXIT_USAGE, "'key-provider status' takes no arguments");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) dict = cli_host_key_provider_status(cli, &error);
  if (dict == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (cli->json) {
    g_autoptr(JsonNode) node = json_gvariant_serialize(dict);
    cli_print_json(node);
  } else {
    print_status(dict);
  }
  return lookup_bool(dict, "ready") ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

static int
run_job(LcvmCli *cli, int argc, char **argv, gboolean (*job)(LcvmCli *cli, GError **error),
        const char *description)
{
  if (!cli_parse(cli, &argc, &argv, NULL, "", description))
    return CLI_EXIT_USAGE;
  if (argc > 1)
    return cli_failf(cli, CLI_EXIT_USAGE, "'%s' takes no arguments", cli->verb);
  g_autoptr(GError) error = NULL;
  if (!job(cli, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  return CLI_EXIT_OK;
}

static int
key_provider_start(LcvmCli *cli, int argc, char **argv)
{
  return run_job(cli, argc, argv, cli_host_start_key_provider,
                 "Starts the prebuilt key provider containers (never builds or pulls). The\n"
                 "image ids are pinned at the first start; a different image is refused while\n"
                 "any VM has a data disk.");
}

static int
key_provider_build(LcvmCli *cli, int argc, char **argv)
{
  return run_job(cli, argc, argv, cli_host_build_key_provider,
                 "Builds the key provider images as root, through the helper, from\n"
                 "docker-compose.build.yaml in the root-owned [key-provider] compose_dir, and\n"
                 "pins them; the build's output is its progress. Refused while any CVM data\n"
                 "disk exists on this host (see 'lium-cvm inventory'): a rebuilt enclave has a\n"
                 "new MRENCLAVE and could never open them. Then: lium-cvm key-provider start.");
}

static int
key_provider_stop(LcvmCli *cli, int argc, char **argv)
{
  return run_job(cli, argc, argv, cli_host_stop_key_provider, "Stops the key provider containers.");
}

static int
key_provider_logs(LcvmCli *cli, int argc, char **argv)
{
  gint lines = 200;
  const GOptionEntry entries[] = {
    { "lines", 'n', 0, G_OPTION_ARG_INT, &lines, "Show the last N lines (default 200)", "N" },
    { "raw", 0, 0, G_OPTION_ARG_NONE, &cli->raw, "Print the logs as they are, even to a terminal",
      NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "", "Shows the key provider containers' logs."))
    return CLI_EXIT_USAGE;
  if (argc > 1 || lines < 1 || lines > 10000)
    return cli_failf(cli, CLI_EXIT_USAGE, "give -n between 1 and 10000, and no arguments");
  g_autoptr(GError) error = NULL;
  g_autofree char *text = cli_host_key_provider_logs(cli, (guint32)lines, &error);
  if (text == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "logs");
    json_builder_add_string_value(b, text);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
  } else {
    /* Container output: escaped on a terminal like a VM's console (--raw: as it is). */
    g_autofree char *shown = cli_text_for_stdout(cli, text);
    fputs(shown, stdout);
  }
  return CLI_EXIT_OK;
}

static const LcvmCommand key_provider_commands[] = {
  { "key-provider status", "", "Containers, images, pin, port, PRODUCTION mode",
    key_provider_status },
  { "key-provider start", "", "Start the prebuilt containers (pins the images)",
    key_provider_start },
  { "key-provider stop", "", "Stop the containers", key_provider_stop },
  { "key-provider build", "", "Build and pin the images (no data disk may exist)",
    key_provider_build },
  { "key-provider logs", "[-n N] [--raw]", "The containers' last log lines", key_provider_logs },
  { NULL, NULL, NULL, NULL },
};

int
cmd_key_provider(LcvmCli *cli, int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : "";
  for (const LcvmCommand *c = key_provider_commands; c->verb != NULL; c++) {
    if (g_str_equal(c->verb + strlen("key-provider "), sub)) {
      cli->verb = c->verb;
      return c->run(cli, argc - 1, argv + 1);
    }
  }
  FILE *out = g_str_equal(sub, "--help") || g_str_equal(sub, "-h") ? stdout : stderr;
  if (out == stderr)
    fprintf(stderr, "lium-cvm key-provider: unknown subcommand '%s'\n", sub);
  fprintf(out, "Usage:\n");
  for (const LcvmCommand *c = key_provider_commands; c->verb != NULL; c++) {
    g_autofree char *usage = g_strdup_printf("%s %s", c->verb, c->args);
    fprintf(out, "  lium-cvm %-28s %s\n", usage, c->summary);
  }
  return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}
