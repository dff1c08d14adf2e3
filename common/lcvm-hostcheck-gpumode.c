/* SPDX-License-Identifier: MIT */
/* Host check, GPU mode area: every CC-capable GPU must be in CC mode "on" by the helper's cache
 * (state_dir/gpu-modes.json; a guest's driver fails with RmInitAdapter 0x22:0x56:894 otherwise,
 * reference/lium.md §8.12), except on a board deliberately in Protected PCIe mode (every GPU and
 * NVSwitch PPCIe on); and Lium's mode policy (lcvm-board-policy.h) for the board and for every
 * VM defined in state_dir/vms. Reads the cache only: asking the tool would wake and write the
 * devices. */
#include "lcvm-board-policy.h"
#include "lcvm-fd.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-hostcheck-private.h"
#include "lcvm-layout.h"
#include "lcvm-manifest.h"
#include "lcvm-pci.h"
#include "lcvm-sysfs.h"

#include <fcntl.h>
#include <unistd.h>

#define POLICY_EXPECTED                                                                            \
  "one GPU per VM: CC on; several Hopper GPUs of an NVSwitch board in one VM: PPCIe on the "       \
  "whole board, every GPU and NVSwitch in that VM; Blackwell: CC only"

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

/* Issues → one check: OK, or FAIL with the problems observed and the fixes as remedy. */
static void
set_policy(LcvmCheck *c, GPtrArray *issues, const char *ok_text)
{
  if (issues->len == 0) {
    hc_set(c, LCVM_CHECK_OK, "%s", ok_text);
    return;
  }
  GString *problems = g_string_new(""), *fixes = g_string_new("");
  for (guint i = 0; i < issues->len; i++) {
    const LcvmPolicyIssue *issue = issues->pdata[i];
    g_string_append_printf(problems, "%s%s", i ? "; " : "", issue->problem);
    g_string_append_printf(fixes, "%s%s", i ? "; then " : "", issue->fix);
  }
  hc_set(c, LCVM_CHECK_FAIL, "%s", problems->str);
  hc_remedy(c, "%s", fixes->str);
  g_string_free(problems, TRUE);
  g_string_free(fixes, TRUE);
}

static void
check_vm_policy(HostCtx *ctx, LcvmPciInventory *inv, GHashTable *modes, int vms_fd,
                const char *name)
{
  g_autoptr(LcvmManifest) m = lcvm_manifest_load_vm(vms_fd, name, NULL, NULL);
  if (m == NULL || (m->gpus[0] == NULL && m->nvswitches[0] == NULL))
    return; /* an unreadable definition is `run`'s to report; no GPU, no policy */
  g_autofree char *id = g_strdup_printf("vm.%s.gpu_mode_policy", name);
  g_autofree char *title = g_strdup_printf("VM %s GPU modes", name);
  LcvmCheck *c = hc_add(ctx, id, title, POLICY_EXPECTED);
  g_autoptr(GPtrArray) issues = lcvm_board_policy_vm(inv, modes, (const char *const *)m->gpus,
                                                     (const char *const *)m->nvswitches);
  set_policy(c, issues, "its GPUs are in the modes it needs");
}

/* Lium's mode policy for the board and for every VM defined on this host. */
static void
check_policy(HostCtx *ctx, LcvmPciInventory *inv, GHashTable *modes)
{
  LcvmCheck *c = hc_add(ctx, "gpu.board_mode_policy", "GPU board modes", POLICY_EXPECTED);
  g_autoptr(GPtrArray) issues = lcvm_board_policy_board(inv, modes);
  set_policy(c, issues, "no Blackwell GPU in PPCIe, no NVSwitch board partly in PPCIe");
  g_autofree char *vms = lcvm_layout_vms_dir(ctx->config);
  lcvm_autofd int vms_fd = open(vms, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (vms_fd < 0)
    return;
  g_auto(GStrv) names = lcvm_sysfs_list(vms);
  for (guint i = 0; names != NULL && names[i] != NULL; i++)
    check_vm_policy(ctx, inv, modes, vms_fd, names[i]);
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
  if (modes != NULL && board[0] != NULL)
    check_policy(ctx, inv, modes);
}
