/* SPDX-License-Identifier: MIT */
/* `lium-cvm gpu cc SLOT…|all --mode on|off|devtools [--ppcie on|off]`, `lium-cvm gpu reset SLOT`
 * and lsgpu's mode columns. The frontend never runs gpu-admin-tools (a query wakes the device
 * and writes its registers): it asks the helper, and reads the helper's cache for display. */
#include "cli-client.h"
#include "cmd-gpumode.h"
#include "lcvm-board-policy.h"
#include "lcvm-gpu-admin.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-names.h"
#include "lcvm-validate.h"
#include <stdio.h>

/* ---- lsgpu ---- */

GHashTable *
gpumode_cache_load(LcvmCli *cli)
{
  g_autoptr(GError) error = NULL;
  GHashTable *modes = lcvm_gpu_modes_load(cli->config->state_dir, &error);
  if (modes != NULL)
    return modes;
  g_printerr("note: no cached GPU modes: %s\n", error->message);
  return lcvm_gpu_modes_new();
}

static const char *
short_mode(const char *mode)
{
  if (mode == NULL || g_str_equal(mode, "unsupported"))
    return "-";
  return g_str_has_prefix(mode, "invalid") ? "invalid" : mode;
}

char *
gpumode_cell(GHashTable *modes, const LcvmPciDevice *d, gint64 now)
{
  const LcvmGpuMode *m = g_hash_table_lookup(modes, d->slot);
  if (m == NULL)
    return g_strdup(d->arch ? "?" : "-");
  g_autofree char *age = lcvm_gpu_mode_age(m, now);
  if (m->broken)
    return g_strdup_printf("broken %s", age);
  return g_strdup_printf("%s/%s %s", short_mode(m->cc), short_mode(m->ppcie), age);
}

void
gpumode_json(JsonBuilder *b, GHashTable *modes, const LcvmPciDevice *d, gint64 now)
{
  const LcvmGpuMode *m = g_hash_table_lookup(modes, d->slot);
  json_builder_set_member_name(b, "mode");
  if (m == NULL) {
    json_builder_add_null_value(b);
    return;
  }
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "cc");
  if (m->cc != NULL)
    json_builder_add_string_value(b, m->cc);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "ppcie");
  if (m->ppcie != NULL)
    json_builder_add_string_value(b, m->ppcie);
  else
    json_builder_add_null_value(b);
  json_builder_set_member_name(b, "broken");
  json_builder_add_boolean_value(b, m->broken);
  json_builder_set_member_name(b, "queried_at");
  json_builder_add_int_value(b, m->queried_at);
  json_builder_set_member_name(b, "age_s");
  json_builder_add_int_value(b, MAX(now - m->queried_at, 0));
  json_builder_end_object(b);
}

void
gpumode_details(GHashTable *modes, const LcvmPciDevice *d, gint64 now)
{
  const LcvmGpuMode *m = g_hash_table_lookup(modes, d->slot);
  if (m == NULL) {
    if (d->arch != NULL)
      printf("\tCC mode: unknown (never queried: lium-cvm lsgpu --query %s)\n", d->slot);
    return;
  }
  g_autofree char *age = lcvm_gpu_mode_age(m, now);
  if (m->broken)
    printf("\tCC mode: unknown, the device reported itself broken (%s ago)\n", age);
  else
    printf("\tCC mode: %s, PPCIe mode: %s (queried %s%s)\n", m->cc, m->ppcie, age,
           g_str_equal(age, "now") ? "" : " ago");
}

gboolean
gpumode_query(LcvmCli *cli, GPtrArray *devices)
{
  gboolean ok = TRUE;
  for (guint i = 0; i < devices->len; i++) {
    const LcvmPciDevice *d = devices->pdata[i];
    if (d->arch == NULL)
      continue;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) mode = cli_host_query_gpu_mode(cli, d->slot, &error);
    if (mode == NULL) {
      g_printerr("lium-cvm: %s: %s\n", d->slot, error->message);
      ok = FALSE;
    }
  }
  return ok;
}

/* ---- gpu cc ---- */

typedef struct {
  const char *slot;
  const char *cc;    /* "" leaves it */
  const char *ppcie; /* "" leaves it */
} ModeRequest;

/* NVSwitches first: a board goes into (or out of) PPCIe mode switches first (§A.14). */
static gint
switches_first(gconstpointer a, gconstpointer b)
{
  const LcvmPciDevice *x = *(LcvmPciDevice *const *)a;
  const LcvmPciDevice *y = *(LcvmPciDevice *const *)b;
  if (x->kind != y->kind)
    return x->kind == LCVM_PCI_NVSWITCH ? -1 : 1;
  return g_strcmp0(x->slot, y->slot);
}

static GPtrArray *
chosen_devices(LcvmPciInventory *inv, int argc, char **argv, GError **error)
{
  g_autoptr(GPtrArray) out = g_ptr_array_new();
  if (argc == 2 && g_str_equal(argv[1], "all")) {
    for (guint i = 0; i < inv->devices->len; i++) {
      LcvmPciDevice *d = inv->devices->pdata[i];
      if (d->arch != NULL)
        g_ptr_array_add(out, d);
    }
    g_ptr_array_sort(out, switches_first);
    return g_steal_pointer(&out);
  }
  for (int i = 1; i < argc; i++) {
    g_autofree char *slot = lcvm_slot_normalize(argv[i], error);
    if (slot == NULL)
      return NULL;
    LcvmPciDevice *d = lcvm_pci_inventory_find(inv, slot);
    if (d == NULL) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                  "%s is not an NVIDIA GPU or NVSwitch on this host ('lium-cvm lsgpu' lists them)",
                  slot);
      return NULL;
    }
    if (!g_ptr_array_find(out, d, NULL))
      g_ptr_array_add(out, d);
  }
  return g_steal_pointer(&out);
}

/* What to send for one device; FALSE when there is nothing to do for it. */
static gboolean
request_for(const LcvmPciDevice *d, const char *mode, const char *ppcie, gboolean ppcie_given,
            ModeRequest *r)
{
  r->slot = d->slot;
  r->cc = d->kind == LCVM_PCI_GPU ? mode : "";
  r->ppcie = ppcie ? ppcie : "";
  /* the tool has PPCIe on Hopper only; the implied "off" is dropped elsewhere */
  if (d->kind == LCVM_PCI_GPU && !ppcie_given && g_strcmp0(d->arch, "hopper") != 0)
    r->ppcie = "";
  return r->cc[0] != '\0' || r->ppcie[0] != '\0';
}

static gboolean
set_one(LcvmCli *cli, const ModeRequest *r, GError **error)
{
  if (!cli->json)
    g_printerr("%s: CC %s, PPCIe %s\n", r->slot, r->cc[0] ? r->cc : "unchanged",
               r->ppcie[0] ? r->ppcie : "unchanged");
  return cli_host_set_gpu_mode(cli, r->slot, r->cc, r->ppcie, error);
}

static void
print_modes(LcvmCli *cli, GPtrArray *done)
{
  g_autoptr(GHashTable) modes = gpumode_cache_load(cli);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "devices");
    json_builder_begin_array(b);
    for (guint i = 0; i < done->len; i++) {
      const LcvmPciDevice *d = done->pdata[i];
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "slot");
      json_builder_add_string_value(b, d->slot);
      gpumode_json(b, modes, d, now);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
    return;
  }
  for (guint i = 0; i < done->len; i++) {
    const LcvmPciDevice *d = done->pdata[i];
    const LcvmGpuMode *m = g_hash_table_lookup(modes, d->slot);
    printf("%s  %-8s cc %-11s ppcie %s\n", d->slot, lcvm_pci_kind_name(d->kind),
           m && m->cc ? m->cc : "?", m && m->ppcie ? m->ppcie : "?");
  }
}

/* Lium's mode policy for the board as the cache now stands: PPCIe is all or nothing per
 * NVSwitch board, and Blackwell has none. A warning: the switch was asked for, and `run`
 * refuses a VM that the resulting modes do not fit. */
static void
warn_board_policy(LcvmCli *cli, LcvmPciInventory *inv)
{
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_load(cli->config->state_dir, NULL);
  if (modes == NULL)
    return;
  g_autoptr(GPtrArray) issues = lcvm_board_policy_board(inv, modes);
  for (guint i = 0; i < issues->len; i++) {
    const LcvmPolicyIssue *issue = issues->pdata[i];
    g_printerr("warning: GPU modes: %s; fix: %s\n", issue->problem, issue->fix);
  }
}

int
gpu_cc(LcvmCli *cli, int argc, char **argv)
{
  g_autofree char *mode = NULL;
  g_autofree char *ppcie = NULL;
  const GOptionEntry entries[] = {
    { "mode", 0, 0, G_OPTION_ARG_STRING, &mode, "CC mode of the GPUs: on, off or devtools",
      "MODE" },
    { "ppcie", 0, 0, G_OPTION_ARG_STRING, &ppcie,
      "Protected PCIe mode: on or off (default with --mode on|devtools: off)", "on|off" },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "SLOT…|all",
                 "Sets the Confidential Computing mode of GPUs (and the PPCIe mode of GPUs and\n"
                 "NVSwitches) through the helper and gpu-admin-tools: each device is taken off\n"
                 "vfio-pci, switched with a reset, verified and bound back. NVSwitches have no\n"
                 "CC mode; they get the PPCIe mode. A device in use by a VM is refused."))
    return CLI_EXIT_USAGE;
  if (argc < 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "name the slots (see 'lium-cvm lsgpu'), or 'all'");
  if (!lcvm_gpu_mode_settable(LCVM_GPU_KNOB_CC, mode))
    return cli_failf(cli, CLI_EXIT_USAGE, "give --mode on, off or devtools");
  if (ppcie != NULL && !lcvm_gpu_mode_settable(LCVM_GPU_KNOB_PPCIE, ppcie))
    return cli_failf(cli, CLI_EXIT_USAGE, "--ppcie is on or off");
  if (g_strcmp0(ppcie, "on") == 0 && !g_str_equal(mode, "off"))
    return cli_failf(cli, CLI_EXIT_USAGE,
                     "CC and Protected PCIe exclude each other: use --mode off --ppcie on for a "
                     "board in PPCIe mode");
  gboolean ppcie_given = ppcie != NULL;
  /* as the seed does: enabling CC sets PPCIe off unless told otherwise */
  const char *ppcie_mode = ppcie_given ? ppcie : g_str_equal(mode, "off") ? NULL : "off";

  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(cli->config->sysfs_root, &error);
  if (inv == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  g_autoptr(GPtrArray) devices = chosen_devices(inv, argc, argv, &error);
  if (devices == NULL)
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  g_autoptr(GPtrArray) done = g_ptr_array_new();
  for (guint i = 0; i < devices->len; i++) {
    const LcvmPciDevice *d = devices->pdata[i];
    ModeRequest r;
    if (!request_for(d, mode, ppcie_mode, ppcie_given, &r)) {
      if (!cli->json)
        g_printerr("%s: skipped (an NVSwitch has no CC mode; give --ppcie to set its PPCIe "
                   "mode)\n",
                   d->slot);
      continue;
    }
    if (!set_one(cli, &r, &error))
      return cli_fail(cli, CLI_EXIT_FAILED, error);
    g_ptr_array_add(done, (gpointer)d);
  }
  print_modes(cli, done);
  warn_board_policy(cli, inv);
  return CLI_EXIT_OK;
}

/* ---- gpu reset ---- */

int
gpu_reset(LcvmCli *cli, int argc, char **argv)
{
  gboolean bus = FALSE;
  const GOptionEntry entries[] = {
    { "bus", 0, 0, G_OPTION_ARG_NONE, &bus,
      "Secondary bus reset of the GPU's own bridge (what every VM start does)", NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "SLOT",
                 "Resets one GPU or NVSwitch through sysfs (the kernel picks the method), which\n"
                 "makes a pending CC or PPCIe setting active. With --bus, a GPU gets a secondary\n"
                 "bus reset of its own upstream bridge instead, as before every VM start: it\n"
                 "clears firmware state an FLR leaves (refused for an NVSwitch, a shared bridge\n"
                 "or a reset reaching outside the GPU's IOMMU group). Refused while a VM uses it."))
    return CLI_EXIT_USAGE;
  if (argc != 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "name one slot (see 'lium-cvm lsgpu')");
  g_autoptr(GError) error = NULL;
  g_autofree char *slot = lcvm_slot_normalize(argv[1], &error);
  if (slot == NULL)
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  guint64 flags = bus ? LCVM_RESET_GPU_BUS : 0;
  if (!cli_host_reset_gpu(cli, slot, flags, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "reset");
    json_builder_add_string_value(b, slot);
    json_builder_set_member_name(b, "method");
    json_builder_add_string_value(b, bus ? "bus" : "kernel");
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
  } else {
    printf("%s reset%s\n", slot, bus ? " (bus reset)" : "");
  }
  return CLI_EXIT_OK;
}
