/* Host check, GPU mode area: every CC-capable GPU must be in CC mode "on" by the helper's cache
 * (state_dir/gpu-modes.json; a guest's driver fails with RmInitAdapter 0x22:0x56:894 otherwise,
 * reference/lium.md §8.12), except on a board deliberately in Protected PCIe mode (every GPU and
 * NVSwitch PPCIe on). Reads the cache only: asking the tool would wake and write the devices. */
#include "lcvm-gpu-modes.h"
#include "lcvm-hostcheck-private.h"
#include "lcvm-pci.h"

static GStrv
board_slots(LcvmPciInventory *inv)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = g_ptr_array_index(inv->devices, i);
    if (d->arch != NULL)
      g_strv_builder_add(b, d->slot);
  }
  return g_strv_builder_end(b);
}

static void
check_one(HostCtx *ctx, const LcvmPciDevice *d, GHashTable *modes, gboolean board_ppcie, gint64 now)
{
  g_autofree char *id = g_strdup_printf("gpu.%s.cc_mode", d->slot);
  g_autofree char *title = g_strdup_printf("GPU %s CC mode", d->slot);
  LcvmCheck *c = hc_add(ctx, id, title, "on (or the whole board in Protected PCIe mode)");
  const LcvmGpuMode *m = g_hash_table_lookup(modes, d->slot);
  if (m == NULL) {
    hc_set(c, LCVM_CHECK_FAIL, "not known: the helper never queried it");
    hc_remedy(c, "lium-cvm lsgpu --query %s; if it is not on: lium-cvm gpu cc %s --mode on",
              d->slot, d->slot);
    return;
  }
  g_autofree char *age = lcvm_gpu_mode_age(m, now);
  if (m->broken) {
    hc_set(c, LCVM_CHECK_FAIL, "broken when last queried (%s ago)", age);
    hc_remedy(c, "lium-cvm gpu cc %s --mode on (recovers it by a PCIe remove and rescan)", d->slot);
    return;
  }
  if (g_strcmp0(m->cc, "on") == 0) {
    hc_set(c, LCVM_CHECK_OK, "on (queried %s ago)", age);
    return;
  }
  if (board_ppcie) {
    hc_set(c, LCVM_CHECK_OK,
           "CC %s, PPCIe on: the board is in Protected PCIe mode (queried %s ago)", m->cc, age);
    return;
  }
  hc_set(c, LCVM_CHECK_FAIL, "CC %s, PPCIe %s (queried %s ago)", m->cc, m->ppcie, age);
  hc_remedy(c,
            "lium-cvm gpu cc %s --mode on (a guest cannot use the GPU otherwise: RmInitAdapter "
            "failed 0x22:0x56:894); for a board in Protected PCIe mode: lium-cvm gpu cc all "
            "--mode off --ppcie on",
            d->slot);
}

void
hc_check_gpu_modes(HostCtx *ctx)
{
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(ctx->config->sysfs_root, NULL);
  if (inv == NULL)
    return;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_load(ctx->config->state_dir, &error);
  g_auto(GStrv) board = board_slots(inv);
  gboolean board_ppcie =
      modes != NULL && lcvm_gpu_modes_board_ppcie(modes, (const char *const *)board);
  gint64 now = g_get_real_time() / G_USEC_PER_SEC;
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = g_ptr_array_index(inv->devices, i);
    if (d->kind != LCVM_PCI_GPU || d->arch == NULL)
      continue;
    if (modes == NULL) {
      g_autofree char *id = g_strdup_printf("gpu.%s.cc_mode", d->slot);
      g_autofree char *title = g_strdup_printf("GPU %s CC mode", d->slot);
      LcvmCheck *c = hc_add(ctx, id, title, "on (or the whole board in Protected PCIe mode)");
      hc_set(c, LCVM_CHECK_UNKNOWN, "%s", error->message);
      continue;
    }
    check_one(ctx, d, modes, board_ppcie, now);
  }
}
