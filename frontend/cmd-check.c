/* SPDX-License-Identifier: MIT */
/* `lium-cvm check [--deep] [--fix [--yes]]`: the host readiness report. Prints every check
 * of lcvm-hostcheck as a compact table (or one JSON document), exits 0 when ready, 1 when a
 * check failed, 2 when the check could not run. --fix offers the fixes the helper can make
 * and prints the rest as commands: it never edits GRUB or firmware settings. */
#include "cli.h"
#include "cli-client.h"
#include "cmd-check-deep.h"
#include "lcvm-grub.h"
#include "lcvm-hostcheck.h"
#include "lcvm-names.h"
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define KEY_PROVIDER_TIMEOUT_MS 300

typedef struct {
  gboolean colour;
  int id_width;
} Table;

static const char *
status_label(LcvmCheckStatus status)
{
  switch (status) {
  case LCVM_CHECK_OK:
    return "ok";
  case LCVM_CHECK_WARN:
    return "warn";
  case LCVM_CHECK_FAIL:
    return "FAIL";
  case LCVM_CHECK_UNKNOWN:
    return "unknown";
  case LCVM_CHECK_SKIP:
    return "skip";
  }
  return "unknown";
}

static const char *
status_colour(LcvmCheckStatus status)
{
  switch (status) {
  case LCVM_CHECK_OK:
    return "\033[32m";
  case LCVM_CHECK_WARN:
    return "\033[33m";
  case LCVM_CHECK_FAIL:
    return "\033[1;31m";
  case LCVM_CHECK_UNKNOWN:
    return "\033[35m";
  case LCVM_CHECK_SKIP:
    return "\033[2m";
  }
  return "";
}

static gboolean
use_colour(void)
{
  const char *term = g_getenv("TERM");
  return isatty(STDOUT_FILENO) && g_getenv("NO_COLOR") == NULL && g_strcmp0(term, "dumb") != 0;
}

static void
print_check(const Table *t, const LcvmCheck *c)
{
  const char *on = t->colour ? status_colour(c->status) : "";
  const char *off = t->colour ? "\033[0m" : "";
  printf("%s%-7s%s  %-*s  %s\n", on, status_label(c->status), off, t->id_width, c->id,
         c->observed ? c->observed : "");
  if (c->status == LCVM_CHECK_OK || c->status == LCVM_CHECK_SKIP)
    return;
  int indent = 9 + t->id_width;
  if (c->expected != NULL)
    printf("%*s  expected: %s\n", indent, "", c->expected);
  if (c->remedy != NULL)
    printf("%*s  remedy:   %s\n", indent, "", c->remedy);
}

static void
print_summary(const LcvmCheckReport *report)
{
  gboolean ready = lcvm_check_report_ready(report);
  printf("\n%s: %u failed, %u warnings, %u unknown, %u skipped, %u ok.\n",
         ready ? "Ready" : "Not ready", lcvm_check_report_count(report, LCVM_CHECK_FAIL),
         lcvm_check_report_count(report, LCVM_CHECK_WARN),
         lcvm_check_report_count(report, LCVM_CHECK_UNKNOWN),
         lcvm_check_report_count(report, LCVM_CHECK_SKIP),
         lcvm_check_report_count(report, LCVM_CHECK_OK));
}

static void
print_table(const LcvmCheckReport *report)
{
  Table t = { .colour = use_colour() };
  for (guint i = 0; i < report->checks->len; i++) {
    const LcvmCheck *c = g_ptr_array_index(report->checks, i);
    t.id_width = MAX(t.id_width, (int)strlen(c->id));
  }
  for (guint i = 0; i < report->checks->len; i++)
    print_check(&t, g_ptr_array_index(report->checks, i));
  print_summary(report);
}

/* ---- --fix ---- */

static gboolean
ask(const char *question, gboolean yes)
{
  printf("%s [y/N] ", question);
  if (yes) {
    printf("yes (--yes)\n");
    return TRUE;
  }
  fflush(stdout);
  char line[64];
  if (fgets(line, sizeof(line), stdin) == NULL) {
    printf("\n");
    return FALSE;
  }
  return line[0] == 'y' || line[0] == 'Y';
}

static gboolean
needs_fix(const LcvmCheckReport *report, LcvmCheckFix fix)
{
  for (guint i = 0; i < report->checks->len; i++) {
    const LcvmCheck *c = g_ptr_array_index(report->checks, i);
    if (c->fix == fix && (c->status == LCVM_CHECK_FAIL || c->status == LCVM_CHECK_WARN))
      return TRUE;
  }
  return FALSE;
}

/* Whether the helper answers GetInfo and lists method in its "methods". */
static gboolean
helper_has_method(LcvmCli *cli, const char *method)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) info = cli_host_get_info(cli, &error);
  if (info == NULL)
    return FALSE;
  g_autoptr(GVariant) methods = g_variant_lookup_value(info, "methods", G_VARIANT_TYPE("a(sss)"));
  GVariantIter it;
  const char *iface, *name, *action;
  if (methods == NULL)
    return FALSE;
  g_variant_iter_init(&it, methods);
  while (g_variant_iter_next(&it, "(&s&s&s)", &iface, &name, &action))
    if (g_str_equal(iface, LCVM_IFACE_HOST) && g_str_equal(name, method))
      return TRUE;
  return FALSE;
}

/* Says how a fix the helper applied went. */
static gboolean
report_fix(gboolean ok, const GError *error)
{
  if (!ok) {
    printf("  failed: %s\n", error->message);
    return FALSE;
  }
  printf("  done.\n");
  return TRUE;
}

/* Offers what the helper can fix; returns the fixes applied (1 << LcvmCheckFix). */
static guint
helper_fixes(LcvmCli *cli, const LcvmCheckReport *report, gboolean yes)
{
  guint fixed = 0;
  if (needs_fix(report, LCVM_FIX_LOAD_VFIO_MODULES) &&
      ask("Load vfio_pci and vfio_iommu_type1 now and at every boot (through the helper)?", yes)) {
    const char *mods[] = { "vfio_pci", "vfio_iommu_type1", NULL };
    g_autoptr(GError) error = NULL;
    gboolean ok = cli_host_load_modules(cli, mods, TRUE, &error);
    if (report_fix(ok, error))
      fixed |= 1u << LCVM_FIX_LOAD_VFIO_MODULES;
  }
  if (!needs_fix(report, LCVM_FIX_DMA_ENTRY_LIMIT))
    return fixed;
  if (!helper_has_method(cli, "SetDmaEntryLimit")) {
    printf("The helper cannot set the DMA entry limit (it does not answer, or has no "
           "SetDmaEntryLimit): do it yourself, see below.\n");
    return fixed;
  }
  if (!ask("Set the vfio DMA entry limit to 16777216 now and at every boot (through the helper)?",
           yes))
    return fixed;
  g_autoptr(GError) error = NULL;
  gboolean ok = cli_host_set_dma_entry_limit(cli, LCVM_DMA_ENTRY_LIMIT_DEFAULT, TRUE, &error);
  if (report_fix(ok, error))
    fixed |= 1u << LCVM_FIX_DMA_ENTRY_LIMIT;
  return fixed;
}

/* Every remedy of a failed or warned check that no applied fix covered. */
static void
print_manual(const LcvmCheckReport *report, guint applied)
{
  gboolean header = FALSE;
  for (guint i = 0; i < report->checks->len; i++) {
    const LcvmCheck *c = g_ptr_array_index(report->checks, i);
    gboolean fixed = c->fix != LCVM_FIX_NONE && (applied & (1u << c->fix)) != 0;
    if (c->remedy == NULL || fixed ||
        (c->status != LCVM_CHECK_FAIL && c->status != LCVM_CHECK_WARN))
      continue;
    if (!header)
      printf("\nDo these yourself (lium-cvm never edits GRUB or firmware settings):\n");
    header = TRUE;
    printf("  %s: %s\n", c->id, c->remedy);
  }
}

static int
report_status(const LcvmCheckReport *report)
{
  return lcvm_check_report_ready(report) ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

int
cmd_check(LcvmCli *cli, int argc, char **argv)
{
  gboolean deep = FALSE, fix = FALSE, yes = FALSE;
  const GOptionEntry entries[] = {
    { "deep", 0, 0, G_OPTION_ARG_NONE, &deep, "Also run the checks that ask the helper", NULL },
    { "fix", 0, 0, G_OPTION_ARG_NONE, &fix,
      "Offer the fixes the helper can make; print the rest as commands", NULL },
    { "yes", 'y', 0, G_OPTION_ARG_NONE, &yes, "With --fix: apply without asking", NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, NULL,
                 "Exit status: 0 ready, 1 not ready (a check failed), 2 the check could not "
                 "run."))
    return CLI_EXIT_USAGE;
  if (argc > 1)
    return cli_failf(cli, CLI_EXIT_USAGE, "check takes no arguments (see 'lium-cvm check --help')");
  if (fix && cli->json)
    return cli_failf(cli, CLI_EXIT_USAGE, "--fix asks questions; use it without --json");
  if (yes && !fix)
    return cli_failf(cli, CLI_EXIT_USAGE, "--yes only applies to --fix");

  g_autofree char *cache_dir = g_build_filename(g_get_user_cache_dir(), "lium-cvm", NULL);
  LcvmHostcheckOptions options = { .cache_dir = cache_dir,
                                   .connect_timeout_ms = KEY_PROVIDER_TIMEOUT_MS };
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) query_failures = deep ? cli_check_query_gpu_modes(cli) : NULL;
  g_autoptr(LcvmCheckReport) report = lcvm_hostcheck_run(cli->config, &options, &error);
  if (report == NULL)
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  if (deep)
    cli_check_deep(cli, report, query_failures);

  if (cli->json) {
    g_autoptr(JsonNode) root = lcvm_check_report_to_json(report, deep);
    cli_print_json(root);
    return report_status(report);
  }
  print_table(report);
  if (!fix)
    return report_status(report);

  printf("\n");
  guint applied = helper_fixes(cli, report, yes);
  print_manual(report, applied);
  if (applied == 0)
    return report_status(report);
  g_autoptr(LcvmCheckReport) again = lcvm_hostcheck_run(cli->config, &options, &error);
  if (again == NULL)
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  printf("\nAfter the fixes:");
  print_summary(again);
  return report_status(again);
}
