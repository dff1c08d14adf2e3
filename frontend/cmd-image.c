/* SPDX-License-Identifier: MIT */
/* `lium-cvm images [list|verify|rm]`: the OS image store. Runs as the operator, without the
 * helper (the store is group lium-cvm, setgid). Downloads are cmd-download.c. */
#include "cli.h"
#include "lcvm-error.h"
#include "lcvm-image.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* g_format_size() puts a no-break space before the unit; tables are aligned by bytes. */
static char *
format_size(guint64 size)
{
  g_autofree char *text = g_format_size(size);
  g_auto(GStrv) parts = g_strsplit(text, "\xc2\xa0", -1);
  return g_strjoinv(" ", parts);
}

static int
images_list(LcvmCli *cli)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) images = lcvm_image_list(cli->config, &error);
  if (images == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_array(b);
    for (guint i = 0; i < images->len; i++) {
      json_builder_begin_object(b);
      lcvm_image_add_json_members(b, images->pdata[i]);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
    return CLI_EXIT_OK;
  }
  if (images->len == 0) {
    printf("no images (run 'lium-cvm download')\n");
    return CLI_EXIT_OK;
  }
  printf("%-32s %-10s %-10s %-10s %s\n", "NAME", "VERSION", "SIZE", "STATE", "DIGEST");
  for (guint i = 0; i < images->len; i++) {
    const LcvmImage *image = images->pdata[i];
    g_autofree char *size = format_size(lcvm_image_size(image));
    printf("%-32s %-10s %-10s %-10s %s\n", image->name, image->version, size,
           lcvm_image_state_name(lcvm_image_state(image)), image->digest ? image->digest : "-");
  }
  return CLI_EXIT_OK;
}

static int
images_verify(LcvmCli *cli, const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmImage) image = lcvm_image_load(cli->config, name, &error);
  if (image == NULL || !lcvm_image_verify(image, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (!lcvm_image_mark_verified(image, &error))
    g_printerr("lium-cvm: warning: cannot record the verification: %s\n", error->message);
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    lcvm_image_add_json_members(b, image);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
  } else {
    printf("%s: verified (digest %s)\n", image->name, image->digest);
  }
  return CLI_EXIT_OK;
}

static gboolean
confirm(const char *name)
{
  printf("Remove image %s? [y/N] ", name);
  fflush(stdout);
  char answer[16] = "";
  if (fgets(answer, sizeof answer, stdin) == NULL)
    return FALSE;
  return answer[0] == 'y' || answer[0] == 'Y';
}

static int
images_rm(LcvmCli *cli, const char *name, gboolean yes)
{
  g_auto(GStrv) users = lcvm_image_users(cli->config, name);
  if (users[0] != NULL) {
    g_autofree char *list = g_strjoinv(", ", users);
    g_autoptr(GError) error =
        g_error_new(LCVM_ERROR, LCVM_ERROR_BUSY,
                    "image %s is used by the VM definition(s) %s: remove them first "
                    "('lium-cvm rm NAME')",
                    name, list);
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  }
  if (!yes && !isatty(STDIN_FILENO))
    return cli_failf(cli, CLI_EXIT_USAGE, "pass --yes to remove image %s without a prompt", name);
  if (!yes && !confirm(name))
    return cli_failf(cli, CLI_EXIT_FAILED, "image %s was not removed", name);
  g_autoptr(GError) error = NULL;
  if (!lcvm_image_remove(cli->config, name, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "removed");
    json_builder_add_string_value(b, name);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
  } else {
    printf("removed image %s\n", name);
  }
  return CLI_EXIT_OK;
}

int
cmd_images(LcvmCli *cli, int argc, char **argv)
{
  gboolean yes = FALSE;
  const GOptionEntry entries[] = {
    { "yes", 'y', 0, G_OPTION_ARG_NONE, &yes, "rm: do not ask for confirmation", NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "[list | verify NAME | rm NAME [--yes]]",
                 "Lists, verifies or removes the OS images in the image store."))
    return CLI_EXIT_USAGE;
  const char *sub = argc >= 2 ? argv[1] : "list";
  if (g_str_equal(sub, "list") && argc <= 2)
    return images_list(cli);
  if (g_str_equal(sub, "verify") && argc == 3)
    return images_verify(cli, argv[2]);
  if (g_str_equal(sub, "rm") && argc == 3)
    return images_rm(cli, argv[2], yes);
  return cli_failf(cli, CLI_EXIT_USAGE,
                   "usage: lium-cvm images [list | verify NAME | rm NAME [--yes]]");
}

/* `lium-cvm download …` runs lium-cvm-download with the same arguments (see cmd-download.c). */
int
cmd_download_run(LcvmCli *cli, int argc, char **argv)
{
  return cli_run_libexec(cli, "lium-cvm-download", argv);
}
