/* SPDX-License-Identifier: MIT */
/* `lium-cvm lsgpu [SLOT…]` (unprivileged: libpci and /proc, through lcvm-pci) and
 * `lium-cvm gpu bind|unbind|dma-limit` (through the helper; `gpu cc|reset` and the mode columns
 * are in cmd-gpumode.c). Nothing here writes to sysfs: every change is the helper's, after
 * polkit said yes. */
#include "cli-client.h"
#include "cli.h"
#include "cmd-gpumode.h"
#include "lcvm-grub.h"
#include "lcvm-names.h"
#include "lcvm-pci.h"
#include "lcvm-sysfs.h"
#include "lcvm-validate.h"
#include "lcvm-json.h"
#include <stdio.h>

/* ---- lsgpu ---- */

static const char *
class_name(guint32 class_code)
{
  switch (class_code >> 8) {
  case 0x0300:
    return "VGA compatible controller";
  case 0x0302:
    return "3D controller";
  default:
    return "Bridge";
  }
}

static char *
holders_text(const LcvmPciDevice *d)
{
  if (d->holders->len == 0)
    return g_strdup("-");
  GString *s = g_string_new("");
  for (guint i = 0; i < d->holders->len; i++) {
    const LcvmPciHolder *h = d->holders->pdata[i];
    g_string_append_printf(s, "%s%d(%s)", i ? "," : "", h->pid, h->command);
  }
  return g_string_free(s, FALSE);
}

static void
json_add_device(JsonBuilder *b, const LcvmPciDevice *d, GHashTable *modes, gint64 now)
{
  g_autofree char *id = g_strdup_printf("%04x:%04x", d->vendor_id, d->device_id);
  g_autofree char *subsys = g_strdup_printf("%04x:%04x", d->subsys_vendor_id, d->subsys_id);
  g_autofree char *cls = g_strdup_printf("0x%06x", d->class_code);
  json_builder_begin_object(b);
  lcvm_json_add_string_or_null(b, "slot", d->slot);
  lcvm_json_add_string_or_null(b, "kind", lcvm_pci_kind_name(d->kind));
  lcvm_json_add_string_or_null(b, "id", id);
  lcvm_json_add_string_or_null(b, "subsystem", subsys);
  lcvm_json_add_string_or_null(b, "class", cls);
  lcvm_json_add_int_or_null(b, "revision", d->revision);
  lcvm_json_add_string_or_null(b, "model", d->model);
  lcvm_json_add_string_or_null(b, "arch", d->arch);
  json_builder_set_member_name(b, "cc_capable");
  json_builder_add_boolean_value(b, d->arch != NULL && d->kind == LCVM_PCI_GPU);
  lcvm_json_add_string_or_null(b, "driver", d->state.driver);
  lcvm_json_add_string_or_null(b, "driver_override", d->state.driver_override);
  lcvm_json_add_int_or_null(b, "iommu_group", d->state.iommu_group);
  lcvm_json_add_int_or_null(b, "numa_node", d->numa_node);
  json_builder_set_member_name(b, "vfio_ready");
  json_builder_add_boolean_value(b, g_strcmp0(d->state.driver, LCVM_VFIO_DRIVER) == 0 &&
                                        d->state.vfio_dev != NULL);
  lcvm_json_add_string_or_null(b, "vfio_dev", d->state.vfio_dev);
  json_builder_set_member_name(b, "held_by");
  json_builder_begin_array(b);
  for (guint i = 0; i < d->holders->len; i++) {
    const LcvmPciHolder *h = d->holders->pdata[i];
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "pid");
    json_builder_add_int_value(b, h->pid);
    lcvm_json_add_string_or_null(b, "command", h->command);
    lcvm_json_add_string_or_null(b, "path", h->path);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  gpumode_json(b, modes, d, now);
  json_builder_end_object(b);
}

static void
print_json(const LcvmPciInventory *inv, GPtrArray *shown, GHashTable *modes)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "iommu_active");
  json_builder_add_boolean_value(b, inv->iommu_active);
  json_builder_set_member_name(b, "held_by_complete");
  json_builder_add_boolean_value(b, inv->holders_complete);
  json_builder_set_member_name(b, "devices");
  json_builder_begin_array(b);
  for (guint i = 0; i < shown->len; i++)
    json_add_device(b, shown->pdata[i], modes, now);
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  cli_print_json(root);
}

static void
print_table(GPtrArray *shown, GHashTable *modes)
{
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  printf("%-13s %-9s %-10s %-24s %-10s %-5s %-4s %-7s %-14s %s\n", "SLOT", "KIND", "ID", "MODEL",
         "DRIVER", "IOMMU", "NUMA", "VFIO", "CC/PPCIE", "HELD BY");
  for (guint i = 0; i < shown->len; i++) {
    const LcvmPciDevice *d = shown->pdata[i];
    g_autofree char *id = g_strdup_printf("%04x:%04x", d->vendor_id, d->device_id);
    g_autofree char *group =
        d->state.iommu_group >= 0 ? g_strdup_printf("%d", d->state.iommu_group) : g_strdup("-");
    g_autofree char *numa = d->numa_node >= 0 ? g_strdup_printf("%d", d->numa_node) : g_strdup("-");
    g_autofree char *held = holders_text(d);
    g_autofree char *mode = gpumode_cell(modes, d, now);
    printf("%-13s %-9s %-10s %-24s %-10s %-5s %-4s %-7s %-14s %s\n", d->slot,
           lcvm_pci_kind_name(d->kind), id, d->model, d->state.driver ? d->state.driver : "-",
           group, numa, d->state.vfio_dev ? d->state.vfio_dev : "-", mode, held);
  }
}

/* The facts of the seed's step 3 (`lspci -nnk -s SLOT`) plus what binding needs. */
static void
print_details(const LcvmPciDevice *d, GHashTable *modes)
{
  g_autofree char *held = holders_text(d);
  printf("%s %s [%04x]: NVIDIA Corporation %s [%04x:%04x] (rev %02x)\n", d->slot,
         class_name(d->class_code), d->class_code >> 8, d->model, d->vendor_id, d->device_id,
         d->revision);
  printf("\tSubsystem: [%04x:%04x]\n", d->subsys_vendor_id, d->subsys_id);
  printf("\tKernel driver in use: %s\n", d->state.driver ? d->state.driver : "(none)");
  printf("\tDriver override: %s\n", d->state.driver_override ? d->state.driver_override : "(none)");
  if (d->state.iommu_group >= 0)
    printf("\tIOMMU group: %d\n", d->state.iommu_group);
  else
    printf("\tIOMMU group: (none: the IOMMU is off)\n");
  if (d->numa_node >= 0)
    printf("\tNUMA node: %d\n", d->numa_node);
  printf("\tvfio-dev: %s\n", d->state.vfio_dev ? d->state.vfio_dev : "(none)");
  printf("\tHeld open by: %s\n", held);
  printf("\tConfidential computing: %s\n", d->arch ? d->arch : "not supported");
  gpumode_details(modes, d, g_get_real_time() / G_USEC_PER_SEC);
}

/* Normalises slot arguments (BB:DD.F → 0000:BB:DD.F); "all" passes when allowed. */
static GStrv
slot_arguments(int argc, char **argv, gboolean allow_all, GError **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  if (allow_all && argc == 2 && g_str_equal(argv[1], "all")) {
    g_strv_builder_add(b, "all");
    return g_strv_builder_end(b);
  }
  for (int i = 1; i < argc; i++) {
    g_autofree char *slot = lcvm_slot_normalize(argv[i], error);
    if (slot == NULL)
      return NULL;
    g_strv_builder_add(b, slot);
  }
  return g_strv_builder_end(b);
}

static GPtrArray *
select_devices(LcvmCli *cli, LcvmPciInventory *inv, char **slots, GError **error)
{
  g_autoptr(GPtrArray) shown = g_ptr_array_new();
  for (guint i = 0; i < inv->devices->len && slots[0] == NULL; i++)
    g_ptr_array_add(shown, inv->devices->pdata[i]);
  for (guint i = 0; slots[i] != NULL; i++) {
    LcvmPciDevice *d = lcvm_pci_inventory_find(inv, slots[i]);
    if (d == NULL) {
      g_autofree char *dir = lcvm_pci_device_dir(cli->config->sysfs_root, slots[i]);
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s %s", slots[i],
                  g_file_test(dir, G_FILE_TEST_IS_DIR) ? "is not an NVIDIA GPU or NVSwitch"
                                                       : "is not a PCI device on this host");
      return NULL;
    }
    g_ptr_array_add(shown, d);
  }
  return g_steal_pointer(&shown);
}

int
cmd_lsgpu(LcvmCli *cli, int argc, char **argv)
{
  gboolean query = FALSE;
  const GOptionEntry entries[] = {
    { "query", 0, 0, G_OPTION_ARG_NONE, &query,
      "Ask the helper for the CC/PPCIe modes afresh (wakes the devices; refused for one in use)",
      NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "[SLOT…]",
                 "Lists NVIDIA GPUs and NVSwitches: ids, model, driver, IOMMU group, NUMA node,\n"
                 "vfio-dev node, the CC/PPCIe modes the helper last saw (and how long ago) and\n"
                 "the processes holding them open. With SLOTs, their details."))
    return CLI_EXIT_USAGE;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) slots = slot_arguments(argc, argv, FALSE, &error);
  if (slots == NULL)
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(cli->config->sysfs_root, &error);
  if (inv == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  lcvm_pci_find_holders(inv, cli->config->dev_root, cli->config->proc_root);
  g_autoptr(GPtrArray) shown = select_devices(cli, inv, slots, &error);
  if (shown == NULL)
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  int status = query && !gpumode_query(cli, shown) ? CLI_EXIT_FAILED : CLI_EXIT_OK;
  g_autoptr(GHashTable) modes = gpumode_cache_load(cli);

  if (cli->json) {
    print_json(inv, shown, modes);
    return status;
  }
  if (inv->devices->len == 0) {
    printf("No NVIDIA GPU or NVSwitch found.\n");
    return CLI_EXIT_OK;
  }
  if (slots[0] == NULL)
    print_table(shown, modes);
  for (guint i = 0; slots[0] != NULL && i < shown->len; i++)
    print_details(shown->pdata[i], modes);
  if (!inv->iommu_active)
    g_printerr("note: the IOMMU is off, so these devices cannot be bound to vfio-pci (see "
               "'lium-cvm gpu bind')\n");
  if (!inv->holders_complete)
    g_printerr("note: processes of other users were not inspected for HELD BY (the helper "
               "checks them all before binding)\n");
  return status;
}

/* ---- gpu bind / unbind ---- */

/* reference/lium.md §8.13: GPUs of an HGX board passed without their NVSwitches boot a guest
 * without NVLink. */
static void
warn_nvswitches_left(LcvmPciInventory *inv, char **slots)
{
  gboolean any_gpu = g_strv_contains((const char *const *)slots, "all");
  guint left = 0;
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    gboolean asked = g_strv_contains((const char *const *)slots, d->slot);
    if (d->kind == LCVM_PCI_GPU && asked)
      any_gpu = TRUE;
    if (d->kind == LCVM_PCI_NVSWITCH && !asked && g_strcmp0(d->state.driver, LCVM_VFIO_DRIVER) != 0)
      left++;
  }
  if (any_gpu && left > 0 && !g_strv_contains((const char *const *)slots, "all"))
    g_printerr("warning: %u NVSwitch%s of this host stay%s on the host: a guest gets NVLink "
               "only with them ('lium-cvm gpu bind all', or name them too)\n",
               left, left == 1 ? "" : "es", left == 1 ? "s" : "");
}

static void
advise_iommu(LcvmCli *cli)
{
  if (lcvm_pci_iommu_active(cli->config->sysfs_root))
    return;
  g_autofree char *advice = lcvm_grub_advice(cli->config->sysfs_root, cli->config->proc_root, NULL);
  if (advice != NULL)
    g_printerr("The IOMMU is off, so the kernel creates no vfio-dev node for any device.\n%s",
               advice);
}

static void
print_result(LcvmCli *cli, char **slots)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(cli->config->sysfs_root, &error);
  if (inv == NULL)
    return;
  g_autoptr(GPtrArray) shown = g_ptr_array_new();
  for (guint i = 0; i < inv->devices->len; i++) {
    LcvmPciDevice *d = inv->devices->pdata[i];
    if (g_strv_contains((const char *const *)slots, "all") ||
        g_strv_contains((const char *const *)slots, d->slot))
      g_ptr_array_add(shown, d);
  }
  if (cli->json) {
    g_autoptr(GHashTable) modes = gpumode_cache_load(cli);
    print_json(inv, shown, modes);
    return;
  }
  for (guint i = 0; i < shown->len; i++) {
    const LcvmPciDevice *d = shown->pdata[i];
    printf("%s  %s%s%s\n", d->slot, d->state.driver ? d->state.driver : "(no driver)",
           d->state.vfio_dev ? "  " : "", d->state.vfio_dev ? d->state.vfio_dev : "");
  }
}

static int
run_vfio(LcvmCli *cli, int argc, char **argv, gboolean binding)
{
  const char *what = binding ? "bound to vfio-pci" : "given back to their drivers";
  g_autofree char *desc = g_strdup_printf("SLOTs (BB:DD.F or DDDD:BB:DD.F) or 'all' are %s "
                                          "through the helper.",
                                          what);
  if (!cli_parse(cli, &argc, &argv, NULL, "SLOT…|all", desc))
    return CLI_EXIT_USAGE;
  g_autoptr(GError) error = NULL;
  if (argc < 2)
    return cli_failf(cli, CLI_EXIT_USAGE, "name the slots (see 'lium-cvm lsgpu'), or 'all'");
  g_auto(GStrv) slots = slot_arguments(argc, argv, TRUE, &error);
  if (slots == NULL)
    return cli_fail(cli, CLI_EXIT_USAGE, error);
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(cli->config->sysfs_root, NULL);
  if (binding && inv != NULL)
    warn_nvswitches_left(inv, slots);

  const char *const *wanted = (const char *const *)slots;
  gboolean ok =
      binding ? cli_host_bind_vfio(cli, wanted, &error) : cli_host_unbind_vfio(cli, wanted, &error);
  if (!ok) {
    int status = cli_fail(cli, CLI_EXIT_FAILED, error);
    if (binding)
      advise_iommu(cli);
    return status;
  }
  print_result(cli, slots);
  return CLI_EXIT_OK;
}

static int
gpu_bind(LcvmCli *cli, int argc, char **argv)
{
  return run_vfio(cli, argc, argv, TRUE);
}

static int
gpu_unbind(LcvmCli *cli, int argc, char **argv)
{
  return run_vfio(cli, argc, argv, FALSE);
}

/* ---- gpu dma-limit ---- */

static int
gpu_dma_limit(LcvmCli *cli, int argc, char **argv)
{
  gboolean persist = FALSE;
  const GOptionEntry entries[] = {
    { "persist", 0, 0, G_OPTION_ARG_NONE, &persist,
      "Also set it at every boot (modprobe.d/lium-cvm-vfio.conf)", NULL },
    { NULL },
  };
  if (!cli_parse(cli, &argc, &argv, entries, "[N]",
                 "Sets vfio_iommu_type1's dma_entry_limit (default 16777216: large guests with "
                 "GPUs\nneed it when QEMU uses the type1 backend)."))
    return CLI_EXIT_USAGE;
  guint64 limit = LCVM_DMA_ENTRY_LIMIT_DEFAULT;
  g_autoptr(GError) error = NULL;
  if (argc > 2 ||
      (argc == 2 && !g_ascii_string_to_unsigned(argv[1], 10, 1, G_MAXUINT32, &limit, &error)))
    return cli_failf(cli, CLI_EXIT_USAGE, "give one limit between 1 and %u", G_MAXUINT32);

  g_autofree char *param_dir =
      g_build_filename(cli->config->sysfs_root, "module", "vfio_iommu_type1", "parameters", NULL);
  guint64 before = 0;
  gboolean had = lcvm_sysfs_read_uint(param_dir, "dma_entry_limit", &before, NULL);
  if (!cli_host_set_dma_entry_limit(cli, limit, persist, &error))
    return cli_fail(cli, CLI_EXIT_FAILED, error);
  if (cli->json) {
    g_autoptr(JsonBuilder) b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "dma_entry_limit");
    json_builder_add_int_value(b, (gint64)limit);
    json_builder_set_member_name(b, "previous");
    if (had)
      json_builder_add_int_value(b, (gint64)before);
    else
      json_builder_add_null_value(b);
    json_builder_set_member_name(b, "persisted");
    json_builder_add_boolean_value(b, persist);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    cli_print_json(root);
    return CLI_EXIT_OK;
  }
  g_autofree char *was = had ? g_strdup_printf(" (was %" G_GUINT64_FORMAT ")", before) : NULL;
  printf("dma_entry_limit: %" G_GUINT64_FORMAT "%s%s\n", limit, was ? was : "",
         persist ? ", also at boot" : "");
  return CLI_EXIT_OK;
}

/* ---- gpu ---- */

static const LcvmCommand gpu_commands[] = {
  { "gpu bind", "SLOT…|all", "Bind GPUs and NVSwitches to vfio-pci", gpu_bind },
  { "gpu unbind", "SLOT…|all", "Give them back to the driver they had", gpu_unbind },
  { "gpu dma-limit", "[N] [--persist]", "Set the vfio DMA entry limit", gpu_dma_limit },
  { "gpu cc", "SLOT…|all --mode M", "Set the CC mode M (on, off, devtools; --ppcie on|off)",
    gpu_cc },
  { "gpu reset", "SLOT [--bus]", "Reset one device (--bus: its bridge's bus reset)", gpu_reset },
  { NULL, NULL, NULL, NULL },
};

int
cmd_gpu(LcvmCli *cli, int argc, char **argv)
{
  const char *sub = argc > 1 ? argv[1] : "";
  for (const LcvmCommand *c = gpu_commands; c->verb != NULL; c++) {
    if (g_str_equal(c->verb + strlen("gpu "), sub)) {
      cli->verb = c->verb;
      return c->run(cli, argc - 1, argv + 1);
    }
  }
  FILE *out = g_str_equal(sub, "--help") || g_str_equal(sub, "-h") ? stdout : stderr;
  if (out == stderr)
    fprintf(stderr, "lium-cvm gpu: unknown subcommand '%s'\n", sub);
  fprintf(out, "Usage:\n");
  for (const LcvmCommand *c = gpu_commands; c->verb != NULL; c++)
    fprintf(out, "  lium-cvm %s %-20s %s\n", c->verb, c->args, c->summary);
  return out == stdout ? CLI_EXIT_OK : CLI_EXIT_USAGE;
}
