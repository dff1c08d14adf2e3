/* SPDX-License-Identifier: MIT */
/* Lium's GPU mode policy (see the header). Judges only devices whose mode is cached and not
 * broken; the fixes name commands that exist: `lium-cvm gpu cc` and CVM_GPUS in a VM's .env. */
#include "lcvm-board-policy.h"
#include "lcvm-gpu-modes.h"

#define HOPPER    "hopper"
#define BLACKWELL "blackwell"
#define FIX_PPCIE "lium-cvm gpu cc all --mode off --ppcie on"
#define FIX_CC    "lium-cvm gpu cc all --mode on --ppcie off"

static void
lcvm_policy_issue_free(LcvmPolicyIssue *issue)
{
  if (issue == NULL)
    return;
  g_free(issue->problem);
  g_free(issue->fix);
  g_free(issue);
}

static void add_issue(GPtrArray *issues, char *fix, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Takes fix. */
static void
add_issue(GPtrArray *issues, char *fix, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  LcvmPolicyIssue *issue = g_new0(LcvmPolicyIssue, 1);
  issue->problem = g_strdup_vprintf(fmt, ap);
  issue->fix = fix;
  va_end(ap);
  g_ptr_array_add(issues, issue);
}

static GPtrArray *
issues_new(void)
{
  return g_ptr_array_new_with_free_func((GDestroyNotify)lcvm_policy_issue_free);
}

/* The cached mode of slot when it can be judged. */
static const LcvmGpuMode *
known(GHashTable *modes, const char *slot)
{
  const LcvmGpuMode *m = modes ? g_hash_table_lookup(modes, slot) : NULL;
  return m != NULL && !m->broken && m->cc != NULL && m->ppcie != NULL ? m : NULL;
}

static gboolean
is_on(const char *mode)
{
  return g_strcmp0(mode, "on") == 0;
}

static gboolean
contains(const char *const *slots, const char *slot)
{
  return slots != NULL && g_strv_contains(slots, slot);
}

/* "a, b and c" with each device's mode as "a (CC on, PPCIe off)" when with_modes. */
static char *
list_slots(GPtrArray *slots, GHashTable *modes, gboolean with_modes)
{
  GString *s = g_string_new("");
  for (guint i = 0; i < slots->len; i++) {
    const char *slot = slots->pdata[i];
    if (i > 0)
      g_string_append(s, i + 1 == slots->len ? " and " : ", ");
    g_string_append(s, slot);
    const LcvmGpuMode *m = with_modes ? known(modes, slot) : NULL;
    if (m != NULL && g_str_equal(m->kind, "nvswitch"))
      g_string_append_printf(s, " (PPCIe %s)", m->ppcie);
    else if (m != NULL)
      g_string_append_printf(s, " (CC %s, PPCIe %s)", m->cc, m->ppcie);
  }
  return g_string_free(s, FALSE);
}

static char *
join_slots(GPtrArray *slots)
{
  g_ptr_array_add(slots, NULL);
  char *s = g_strjoinv(" ", (char **)slots->pdata);
  g_ptr_array_remove_index(slots, slots->len - 1);
  return s;
}

/* The board's Hopper GPUs and its NVSwitches. */
static void
board_devices(LcvmPciInventory *inv, GPtrArray *hopper_gpus, GPtrArray *switches)
{
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    if (d->kind == LCVM_PCI_NVSWITCH)
      g_ptr_array_add(switches, (gpointer)d->slot);
    else if (g_strcmp0(d->arch, HOPPER) == 0)
      g_ptr_array_add(hopper_gpus, (gpointer)d->slot);
  }
}

static const char *
arch_of(LcvmPciInventory *inv, const char *slot)
{
  const LcvmPciDevice *d = lcvm_pci_inventory_find(inv, slot);
  return d != NULL ? d->arch : NULL;
}

/* Each GPU of cc_gpus must be in CC mode (on, PPCIe off). */
static void
judge_cc(GPtrArray *issues, LcvmPciInventory *inv, GHashTable *modes, GPtrArray *cc_gpus,
         const char *why)
{
  g_autoptr(GPtrArray) wrong = g_ptr_array_new();
  gboolean blackwell_ppcie = FALSE;
  for (guint i = 0; i < cc_gpus->len; i++) {
    const LcvmGpuMode *m = known(modes, cc_gpus->pdata[i]);
    if (m == NULL || (is_on(m->cc) && !is_on(m->ppcie)))
      continue;
    g_ptr_array_add(wrong, cc_gpus->pdata[i]);
    blackwell_ppcie |=
        is_on(m->ppcie) && g_strcmp0(arch_of(inv, cc_gpus->pdata[i]), BLACKWELL) == 0;
  }
  if (wrong->len == 0)
    return;
  g_autofree char *listed = list_slots(wrong, modes, TRUE);
  g_autofree char *slots = join_slots(wrong);
  add_issue(issues, g_strdup_printf("lium-cvm gpu cc %s --mode on", slots),
            "%s %s not in CC mode: %s%s", wrong->len > 1 ? "GPUs" : "GPU", listed, why,
            blackwell_ppcie ? " (Blackwell has no Protected PCIe mode: CC only)" : "");
}

/* Several Hopper GPUs of an NVSwitch board: the whole board in PPCIe, and all of it here. */
static void
judge_ppcie(GPtrArray *issues, GHashTable *modes, GPtrArray *board_gpus, GPtrArray *switches,
            const char *const *gpus, const char *const *nvswitches, guint n_hopper)
{
  g_autoptr(GPtrArray) missing = g_ptr_array_new();
  for (guint i = 0; i < board_gpus->len; i++)
    if (!contains(gpus, board_gpus->pdata[i]))
      g_ptr_array_add(missing, board_gpus->pdata[i]);
  for (guint i = 0; i < switches->len; i++)
    if (!contains(nvswitches, switches->pdata[i]))
      g_ptr_array_add(missing, switches->pdata[i]);
  if (missing->len > 0) {
    g_autofree char *listed = list_slots(missing, modes, FALSE);
    add_issue(issues,
              g_strdup("set CVM_GPUS=all in the VM's .env and run 'lium-cvm new' again (the "
                       "whole board: every GPU and NVSwitch)"),
              "the VM passes %u Hopper GPUs of an NVSwitch board but not %s: Protected PCIe "
              "is all or nothing per board, and NVLink needs every NVSwitch in the VM",
              n_hopper, listed);
  }
  g_autoptr(GPtrArray) wrong = g_ptr_array_new();
  for (guint i = 0; i < board_gpus->len; i++) {
    const LcvmGpuMode *m = known(modes, board_gpus->pdata[i]);
    if (m != NULL && !(is_on(m->ppcie) && g_strcmp0(m->cc, "off") == 0))
      g_ptr_array_add(wrong, board_gpus->pdata[i]);
  }
  for (guint i = 0; i < switches->len; i++) {
    const LcvmGpuMode *m = known(modes, switches->pdata[i]);
    if (m != NULL && !is_on(m->ppcie))
      g_ptr_array_add(wrong, switches->pdata[i]);
  }
  if (wrong->len == 0)
    return;
  g_autofree char *listed = list_slots(wrong, modes, TRUE);
  add_issue(issues, g_strdup(FIX_PPCIE),
            "%s %s not in Protected PCIe mode: a VM with several Hopper GPUs on an NVSwitch "
            "board needs PPCIe on every GPU and NVSwitch of the board (per-GPU CC there turns "
            "NVLink off)",
            listed, wrong->len > 1 ? "are" : "is");
}

GPtrArray *
lcvm_board_policy_vm(LcvmPciInventory *inv, GHashTable *modes, const char *const *gpus,
                     const char *const *nvswitches)
{
  GPtrArray *issues = issues_new();
  g_autoptr(GPtrArray) board_gpus = g_ptr_array_new();
  g_autoptr(GPtrArray) switches = g_ptr_array_new();
  board_devices(inv, board_gpus, switches);
  guint n_hopper = 0;
  for (guint i = 0; gpus != NULL && gpus[i] != NULL; i++)
    n_hopper += g_strcmp0(arch_of(inv, gpus[i]), HOPPER) == 0;
  gboolean ppcie_vm = n_hopper >= 2 && switches->len > 0;
  g_autoptr(GPtrArray) cc_gpus = g_ptr_array_new();
  for (guint i = 0; gpus != NULL && gpus[i] != NULL; i++) {
    const char *arch = arch_of(inv, gpus[i]);
    if (arch != NULL && !(ppcie_vm && g_str_equal(arch, HOPPER)))
      g_ptr_array_add(cc_gpus, (gpointer)gpus[i]);
  }
  if (ppcie_vm)
    judge_ppcie(issues, modes, board_gpus, switches, gpus, nvswitches, n_hopper);
  judge_cc(issues, inv, modes, cc_gpus,
           ppcie_vm ? "a Blackwell GPU is in CC mode in every VM"
           : gpus != NULL && g_strv_length((char **)gpus) == 1
               ? "a VM with one GPU needs CC on and PPCIe off"
               : "GPUs of a board without NVSwitches, and Blackwell GPUs, need CC on and "
                 "PPCIe off");
  return issues;
}

GPtrArray *
lcvm_board_policy_board(LcvmPciInventory *inv, GHashTable *modes)
{
  GPtrArray *issues = issues_new();
  g_autoptr(GPtrArray) board_gpus = g_ptr_array_new();
  g_autoptr(GPtrArray) switches = g_ptr_array_new();
  board_devices(inv, board_gpus, switches);
  for (guint i = 0; i < inv->devices->len; i++) {
    const LcvmPciDevice *d = inv->devices->pdata[i];
    const LcvmGpuMode *m = known(modes, d->slot);
    if (d->kind == LCVM_PCI_GPU && g_strcmp0(d->arch, BLACKWELL) == 0 && m && is_on(m->ppcie))
      add_issue(issues, g_strdup_printf("lium-cvm gpu cc %s --mode on", d->slot),
                "GPU %s is a Blackwell GPU with PPCIe on: Blackwell has no Protected PCIe "
                "mode (CC only)",
                d->slot);
  }
  if (board_gpus->len == 0 || switches->len == 0)
    return issues;
  g_autoptr(GPtrArray) on = g_ptr_array_new();
  g_autoptr(GPtrArray) off = g_ptr_array_new();
  g_ptr_array_extend(board_gpus, switches, NULL, NULL);
  for (guint i = 0; i < board_gpus->len; i++) {
    const LcvmGpuMode *m = known(modes, board_gpus->pdata[i]);
    if (m != NULL)
      g_ptr_array_add(is_on(m->ppcie) ? on : off, board_gpus->pdata[i]);
  }
  if (on->len == 0 || off->len == 0)
    return issues;
  g_autofree char *listed_on = list_slots(on, modes, FALSE);
  g_autofree char *listed_off = list_slots(off, modes, FALSE);
  add_issue(issues,
            g_strdup(FIX_PPCIE " (the whole board for one VM), or " FIX_CC " (one-GPU VMs)"),
            "the NVSwitch board is partly in Protected PCIe mode (on: %s; off: %s): PPCIe is "
            "all or nothing per board",
            listed_on, listed_off);
  return issues;
}

char *
lcvm_board_policy_text(GPtrArray *issues)
{
  GString *s = g_string_new("");
  for (guint i = 0; i < issues->len; i++) {
    const LcvmPolicyIssue *issue = issues->pdata[i];
    g_string_append_printf(s, "%s%s (fix: %s)", i ? "; " : "", issue->problem, issue->fix);
  }
  return g_string_free(s, FALSE);
}
