/* SPDX-License-Identifier: MIT */
/* `lium-cvm download [NAME]`: fetch, verify and install a dstack OS image. Built into its own
 * program, lium-cvm-download (libexecdir), which `lium-cvm download` runs: libcurl and libarchive
 * and what they pull in (GnuTLS, Kerberos, ICU…) cost every other command milliseconds at
 * start-up. Runs as the operator, without the helper (the store is group lium-cvm, setgid).
 * Progress goes to stderr as a bar on a tty, or to stdout as one JSON object per line with
 * --json. */
#include "cli.h"
#include "lcvm-error.h"
#include "lcvm-image-install.h"
#include "lcvm-image.h"
#include "lcvm-known-good.h"
#include "lcvm-sha256.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  LcvmCli *cli;
  gboolean tty;
  gboolean bar_shown;
} DownloadUi;

/* One compact JSON object per line: progress consumers read line by line. */
static void
print_json_line(JsonBuilder *b)
{
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_root(gen, root);
  g_autofree char *text = json_generator_to_data(gen, NULL);
  printf("%s\n", text);
  fflush(stdout);
}

static char *
format_eta(guint64 secs)
{
  if (secs >= 3600)
    return g_strdup_printf("%" G_GUINT64_FORMAT ":%02u:%02u", secs / 3600,
                           (unsigned)(secs / 60 % 60), (unsigned)(secs % 60));
  return g_strdup_printf("%u:%02u", (unsigned)(secs / 60), (unsigned)(secs % 60));
}

static void
print_bar(DownloadUi *ui, const LcvmDownloadProgress *p)
{
  g_autofree char *got = g_format_size(p->received);
  g_autofree char *rate = g_format_size((guint64)p->rate);
  if (p->total == 0) {
    g_printerr("\r%s  %s/s\033[K", got, rate);
  } else {
    const int width = 30;
    int filled = (int)((double)p->received / (double)p->total * width);
    g_autofree char *total = g_format_size(p->total);
    g_autofree char *eta = p->rate > 0
                               ? format_eta((guint64)((double)(p->total - p->received) / p->rate))
                               : g_strdup("--:--");
    g_printerr("\r[%.*s%*s] %3d%%  %s / %s  %s/s  ETA %s\033[K", filled,
               "##############################", width - filled, "",
               (int)(100.0 * (double)p->received / (double)p->total), got, total, rate, eta);
  }
  ui->bar_shown = TRUE;
  if (p->done) {
    g_printerr("\n");
    ui->bar_shown = FALSE;
  }
}

static void
on_progress(const LcvmDownloadProgress *p, gpointer data)
{
  DownloadUi *ui = data;
  if (ui->cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, p->done ? "downloaded" : "progress");
    json_builder_set_member_name(b, "received");
    json_builder_add_int_value(b, (gint64)p->received);
    json_builder_set_member_name(b, "total");
    json_builder_add_int_value(b, (gint64)p->total);
    json_builder_set_member_name(b, "resumed_from");
    json_builder_add_int_value(b, (gint64)p->resumed_from);
    json_builder_set_member_name(b, "rate");
    json_builder_add_int_value(b, (gint64)p->rate);
    if (p->total > 0 && p->rate > 0) {
      json_builder_set_member_name(b, "eta_s");
      json_builder_add_int_value(b, (gint64)((double)(p->total - p->received) / p->rate));
    }
    json_builder_end_object(b);
    print_json_line(b);
  } else if (ui->tty) {
    print_bar(ui, p);
  }
}

static void
on_notice(const char *message, gpointer data)
{
  DownloadUi *ui = data;
  if (ui->bar_shown) {
    g_printerr("\n");
    ui->bar_shown = FALSE;
  }
  if (ui->cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, "notice");
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, message);
    json_builder_end_object(b);
    print_json_line(b);
  } else {
    g_printerr("%s\n", message);
  }
}

static void
download_warning(LcvmCli *cli, DownloadUi *ui, const char *message)
{
  if (ui->bar_shown)
    g_printerr("\n");
  ui->bar_shown = FALSE;
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, "warning");
    json_builder_set_member_name(b, "warning");
    json_builder_add_string_value(b, message);
    json_builder_end_object(b);
    print_json_line(b);
    return;
  }
  g_printerr("warning: %s\n", message);
}

static int
download_failed(LcvmCli *cli, DownloadUi *ui, const GError *error)
{
  if (ui->bar_shown)
    g_printerr("\n");
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, "error");
    json_builder_set_member_name(b, "error");
    json_builder_add_string_value(b, error->message);
    json_builder_end_object(b);
    print_json_line(b);
  }
  g_printerr("lium-cvm: %s\n", error->message);
  return CLI_EXIT_FAILED;
}

/* What the known-good list demands of image name: the digests it may have (its own, or with
 * enforce every accepted one) and its archive sha256 (NULL: unknown). NULL list: unreadable,
 * which only enforce turns into a refusal. */
static LcvmKnownGood *
known_good_for(LcvmCli *cli, DownloadUi *ui, const char *name, GStrv *accepted,
               const char **tarball, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autoptr(LcvmKnownGood) kg = lcvm_known_good_load(cli->config, &local);
  if (kg == NULL) {
    if (cli->config->attestation_enforce) {
      g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                 "refused because [attestation] enforce=true: ");
      return NULL;
    }
    download_warning(cli, ui, local->message);
    return NULL;
  }
  const LcvmKnownImage *listed = lcvm_known_good_image(kg, name);
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  for (guint i = 0; i < kg->images->len; i++) {
    const LcvmKnownImage *image = g_ptr_array_index(kg->images, i);
    if (image == listed || (listed == NULL && cli->config->attestation_enforce))
      g_strv_builder_addv(b, (const char **)image->digests);
  }
  *accepted = g_strv_builder_end(b);
  if ((*accepted)[0] == NULL)
    g_clear_pointer(accepted, g_strfreev);
  *tarball = listed ? listed->tarball_sha256 : NULL;
  return g_steal_pointer(&kg);
}

/* The result line: the "done" event with --json, else one sentence. */
static void
print_installed(LcvmCli *cli, const LcvmImage *image, gboolean downloaded)
{
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "event");
    json_builder_add_string_value(b, "done");
    json_builder_set_member_name(b, "downloaded");
    json_builder_add_boolean_value(b, downloaded);
    lcvm_image_add_json_members(b, image);
    json_builder_end_object(b);
    print_json_line(b);
  } else {
    printf("%s: %s (version %s, digest %s) in %s\n", image->name,
           downloaded ? "downloaded and verified" : "already present and verified", image->version,
           image->digest ? image->digest : "none", image->dir);
  }
}

int
cmd_download(LcvmCli *cli, int argc, char **argv)
{
  g_autofree char *url = NULL;
  g_autofree char *sha256 = NULL;
  const GOptionEntry entries[] = {
    { "url", 0, 0, G_OPTION_ARG_STRING, &url, "Download from URL instead of the release URL",
      "URL" },
    { "sha256", 0, 0, G_OPTION_ARG_STRING, &sha256, "Expected sha256 of the archive", "HEX" },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "[NAME]",
                 "Downloads a dstack OS image into the image store, resuming an interrupted "
                 "download, and verifies it. NAME defaults to [images] default_image."))
    return CLI_EXIT_USAGE;
  if (argc > 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "download takes one image name at most");
  const char *name = argc == 2 ? argv[1] : cli->config->default_image;
  if (sha256 != NULL && !lcvm_sha256_is_hex(sha256))
    return cli_failf(cli, CLI_EXIT_USAGE, "--sha256 needs 64 hex digits");
  if (!lcvm_image_name_is_valid(name))
    return cli_failf(cli, CLI_EXIT_USAGE,
                     "'%s' is not an image name (up to 64 letters, digits, '_', '-', '.')", name);
  const char *url_given = url;
  if (url == NULL)
    url = lcvm_image_default_url(cli->config, name);
  if (url == NULL)
    return cli_failf(cli, CLI_EXIT_USAGE,
                     "cannot tell the release of '%s' (no x.y.z version at its end): pass --url",
                     name);
  /* The configured sha256 belongs to the default image from its usual place only; the
   * known-good list's archive sha256 to the release URL of its name. */
  gboolean default_url = url_given == NULL;
  gboolean config_sha = sha256 == NULL && g_str_equal(name, cli->config->default_image) &&
                        cli->config->image_sha256[0] != '\0';
  DownloadUi ui = { .cli = cli, .tty = isatty(STDERR_FILENO) };
  g_auto(GStrv) accepted = NULL;
  const char *tarball = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmKnownGood) kg = known_good_for(cli, &ui, name, &accepted, &tarball, &error);
  if (error != NULL)
    return download_failed(cli, &ui, error);
  const char *known_sha = sha256 == NULL && !config_sha && default_url ? tarball : NULL;
  LcvmImageInstallOptions opts = {
    .name = name,
    .url = url,
    .sha256 = sha256 ? sha256 : (config_sha ? cli->config->image_sha256 : known_sha),
    .fetch_sha256 = TRUE,
    .accepted_digests = (const char *const *)accepted,
    .progress = on_progress,
    .notice = on_notice,
    .user_data = &ui,
  };
  if (!cli->json && !ui.tty)
    g_printerr("downloading %s from %s\n", name, url);
  gboolean downloaded = FALSE;
  g_autoptr(LcvmImage) image = lcvm_image_install(cli->config, &opts, &downloaded, &error);
  if (image == NULL)
    return download_failed(cli, &ui, error);

  print_installed(cli, image, downloaded);
  /* After the result line: the progress protocol stays as it was, the warning comes last. */
  g_autofree char *reason = NULL;
  if (kg != NULL && !lcvm_known_good_image_ok(kg, image->name, image->digest, &reason))
    download_warning(cli, &ui, reason);
  return CLI_EXIT_OK;
}
