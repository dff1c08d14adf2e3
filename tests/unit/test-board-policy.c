/* SPDX-License-Identifier: MIT */
/* Lium's GPU mode policy (common/lcvm-board-policy.c) on hand-made boards: an HGX board of 8
 * Hopper GPUs and 4 NVSwitches, a PCIe board of 2 H100 without NVSwitches, and Blackwell GPUs
 * on an NVSwitch board; each rule with a complying and a violating mode set, and the exact
 * fix each violation names. */
#include "lcvm-board-policy.h"
#include "lcvm-gpu-modes.h"

#include <string.h>

static const char *const HGX_GPUS[] = { "0000:19:00.0", "0000:3b:00.0", "0000:4c:00.0",
                                        "0000:5d:00.0", "0000:9b:00.0", "0000:bb:00.0",
                                        "0000:cb:00.0", "0000:db:00.0", NULL };
static const char *const HGX_SWITCHES[] = { "0000:05:00.0", "0000:06:00.0", "0000:07:00.0",
                                            "0000:08:00.0", NULL };

typedef struct {
  LcvmPciInventory inv;
  GHashTable *modes;
} Board;

static void
add_device(Board *b, const char *slot, LcvmPciKind kind, const char *arch)
{
  LcvmPciDevice *d = g_new0(LcvmPciDevice, 1);
  g_strlcpy(d->slot, slot, sizeof d->slot);
  d->kind = kind;
  d->arch = arch;
  g_ptr_array_add(b->inv.devices, d);
}

static void
set_mode(Board *b, const char *slot, const char *cc, const char *ppcie)
{
  const LcvmPciDevice *d = lcvm_pci_inventory_find(&b->inv, slot);
  LcvmGpuMode *m = lcvm_gpu_mode_new(slot, d->kind == LCVM_PCI_NVSWITCH ? "nvswitch" : "gpu");
  m->cc = g_strdup(cc);
  m->ppcie = g_strdup(ppcie);
  g_hash_table_replace(b->modes, g_strdup(slot), m);
}

static Board *
board_new(const char *const *gpus, const char *arch, const char *const *switches)
{
  Board *b = g_new0(Board, 1);
  b->inv.devices = g_ptr_array_new_with_free_func(g_free);
  b->modes = lcvm_gpu_modes_new();
  for (guint i = 0; gpus[i]; i++)
    add_device(b, gpus[i], LCVM_PCI_GPU, arch);
  for (guint i = 0; switches && switches[i]; i++)
    add_device(b, switches[i], LCVM_PCI_NVSWITCH, arch);
  return b;
}

static void
board_free(Board *b)
{
  g_ptr_array_unref(b->inv.devices);
  g_hash_table_unref(b->modes);
  g_free(b);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(Board, board_free)

/* Every GPU in CC on/PPCIe off, every NVSwitch PPCIe off. */
static void
all_cc(Board *b)
{
  for (guint i = 0; i < b->inv.devices->len; i++) {
    const LcvmPciDevice *d = b->inv.devices->pdata[i];
    set_mode(b, d->slot, d->kind == LCVM_PCI_NVSWITCH ? "unsupported" : "on", "off");
  }
}

static void
all_ppcie(Board *b)
{
  for (guint i = 0; i < b->inv.devices->len; i++) {
    const LcvmPciDevice *d = b->inv.devices->pdata[i];
    set_mode(b, d->slot, d->kind == LCVM_PCI_NVSWITCH ? "unsupported" : "off", "on");
  }
}

static void
assert_no_issue(GPtrArray *issues)
{
  if (issues->len > 0) {
    g_autofree char *text = lcvm_board_policy_text(issues);
    g_error("unexpected policy issues: %s", text);
  }
}

static void
assert_issue(GPtrArray *issues, guint index, const char *problem_part, const char *fix)
{
  g_assert_cmpuint(issues->len, >, index);
  const LcvmPolicyIssue *issue = issues->pdata[index];
  if (strstr(issue->problem, problem_part) == NULL)
    g_error("problem '%s' lacks '%s'", issue->problem, problem_part);
  g_assert_cmpstr(issue->fix, ==, fix);
}

static void
test_one_gpu_vm_needs_cc(void)
{
  g_autoptr(Board) b = board_new(HGX_GPUS, "hopper", HGX_SWITCHES);
  all_cc(b);
  const char *const one[] = { "0000:3b:00.0", NULL };
  g_autoptr(GPtrArray) ok = lcvm_board_policy_vm(&b->inv, b->modes, one, NULL);
  assert_no_issue(ok);
  all_ppcie(b);
  g_autoptr(GPtrArray) bad = lcvm_board_policy_vm(&b->inv, b->modes, one, NULL);
  g_assert_cmpuint(bad->len, ==, 1);
  assert_issue(bad, 0, "GPU 0000:3b:00.0 (CC off, PPCIe on) not in CC mode: a VM with one GPU",
               "lium-cvm gpu cc 0000:3b:00.0 --mode on");
}

static void
test_several_hopper_gpus_on_an_nvswitch_board_need_the_whole_board_in_ppcie(void)
{
  g_autoptr(Board) b = board_new(HGX_GPUS, "hopper", HGX_SWITCHES);
  all_ppcie(b);
  g_autoptr(GPtrArray) ok = lcvm_board_policy_vm(&b->inv, b->modes, HGX_GPUS, HGX_SWITCHES);
  assert_no_issue(ok);
  all_cc(b);
  g_autoptr(GPtrArray) cc = lcvm_board_policy_vm(&b->inv, b->modes, HGX_GPUS, HGX_SWITCHES);
  g_assert_cmpuint(cc->len, ==, 1);
  assert_issue(cc, 0,
               "0000:19:00.0 (CC on, PPCIe off), 0000:3b:00.0 (CC on, PPCIe off), 0000:4c:00.0",
               "lium-cvm gpu cc all --mode off --ppcie on");
  assert_issue(cc, 0, "and 0000:08:00.0 (PPCIe off) are not in Protected PCIe mode",
               "lium-cvm gpu cc all --mode off --ppcie on");
}

static void
test_a_ppcie_vm_without_every_nvswitch_and_gpu_of_the_board_is_refused(void)
{
  g_autoptr(Board) b = board_new(HGX_GPUS, "hopper", HGX_SWITCHES);
  all_ppcie(b);
  const char *const two[] = { "0000:19:00.0", "0000:3b:00.0", NULL };
  const char *const some_switches[] = { "0000:05:00.0", "0000:06:00.0", NULL };
  g_autoptr(GPtrArray) issues = lcvm_board_policy_vm(&b->inv, b->modes, two, some_switches);
  g_assert_cmpuint(issues->len, ==, 1);
  assert_issue(issues, 0,
               "passes 2 Hopper GPUs of an NVSwitch board but not 0000:4c:00.0, 0000:5d:00.0, "
               "0000:9b:00.0, 0000:bb:00.0, 0000:cb:00.0, 0000:db:00.0, 0000:07:00.0 and "
               "0000:08:00.0",
               "set CVM_GPUS=all in the VM's .env and run 'lium-cvm new' again (the whole "
               "board: every GPU and NVSwitch)");
}

static void
test_several_gpus_without_nvswitches_need_cc_each(void)
{
  const char *const pcie[] = { "0000:17:00.0", "0000:65:00.0", NULL };
  g_autoptr(Board) b = board_new(pcie, "hopper", NULL);
  all_cc(b);
  g_autoptr(GPtrArray) ok = lcvm_board_policy_vm(&b->inv, b->modes, pcie, NULL);
  assert_no_issue(ok);
  set_mode(b, "0000:65:00.0", "off", "off");
  g_autoptr(GPtrArray) bad = lcvm_board_policy_vm(&b->inv, b->modes, pcie, NULL);
  assert_issue(bad, 0,
               "GPU 0000:65:00.0 (CC off, PPCIe off) not in CC mode: GPUs of a board "
               "without NVSwitches",
               "lium-cvm gpu cc 0000:65:00.0 --mode on");
}

static void
test_blackwell_is_cc_only_even_with_nvswitches(void)
{
  const char *const b200[] = { "0000:1a:00.0", "0000:3c:00.0", NULL };
  const char *const sw[] = { "0000:05:00.0", NULL };
  g_autoptr(Board) b = board_new(b200, "blackwell", sw);
  all_cc(b);
  g_autoptr(GPtrArray) ok = lcvm_board_policy_vm(&b->inv, b->modes, b200, sw);
  assert_no_issue(ok);
  g_autoptr(GPtrArray) board_ok = lcvm_board_policy_board(&b->inv, b->modes);
  assert_no_issue(board_ok);
  set_mode(b, "0000:3c:00.0", "off", "on");
  g_autoptr(GPtrArray) bad = lcvm_board_policy_vm(&b->inv, b->modes, b200, sw);
  g_assert_cmpuint(bad->len, ==, 1);
  assert_issue(bad, 0, "(Blackwell has no Protected PCIe mode: CC only)",
               "lium-cvm gpu cc 0000:3c:00.0 --mode on");
  g_autoptr(GPtrArray) board = lcvm_board_policy_board(&b->inv, b->modes);
  g_assert_cmpuint(board->len, ==, 1);
  assert_issue(board, 0, "GPU 0000:3c:00.0 is a Blackwell GPU with PPCIe on",
               "lium-cvm gpu cc 0000:3c:00.0 --mode on");
}

static void
test_a_board_partly_in_ppcie_is_a_board_issue(void)
{
  g_autoptr(Board) b = board_new(HGX_GPUS, "hopper", HGX_SWITCHES);
  all_cc(b);
  g_autoptr(GPtrArray) cc = lcvm_board_policy_board(&b->inv, b->modes);
  assert_no_issue(cc);
  all_ppcie(b);
  g_autoptr(GPtrArray) ppcie = lcvm_board_policy_board(&b->inv, b->modes);
  assert_no_issue(ppcie);
  set_mode(b, "0000:19:00.0", "on", "off");
  g_autoptr(GPtrArray) partial = lcvm_board_policy_board(&b->inv, b->modes);
  g_assert_cmpuint(partial->len, ==, 1);
  assert_issue(partial, 0, "partly in Protected PCIe mode (on: 0000:3b:00.0, ",
               "lium-cvm gpu cc all --mode off --ppcie on (the whole board for one VM), or "
               "lium-cvm gpu cc all --mode on --ppcie off (one-GPU VMs)");
  assert_issue(partial, 0, "; off: 0000:19:00.0)",
               "lium-cvm gpu cc all --mode off --ppcie on (the whole board for one VM), or "
               "lium-cvm gpu cc all --mode on --ppcie off (one-GPU VMs)");
}

/* Modes never queried, or last seen broken, are not judged (check reports them itself). */
static void
test_unknown_and_broken_modes_are_not_judged(void)
{
  g_autoptr(Board) b = board_new(HGX_GPUS, "hopper", HGX_SWITCHES);
  g_autoptr(GPtrArray) none = lcvm_board_policy_vm(&b->inv, b->modes, HGX_GPUS, HGX_SWITCHES);
  assert_no_issue(none);
  all_cc(b);
  const char *const one[] = { "0000:19:00.0", NULL };
  set_mode(b, "0000:3b:00.0", "off", "on");
  ((LcvmGpuMode *)g_hash_table_lookup(b->modes, "0000:19:00.0"))->broken = TRUE;
  g_autoptr(GPtrArray) issues = lcvm_board_policy_vm(&b->inv, b->modes, one, NULL);
  assert_no_issue(issues);
}

static void
test_text_joins_problems_and_fixes(void)
{
  g_autoptr(Board) b = board_new(HGX_GPUS, "hopper", HGX_SWITCHES);
  all_cc(b);
  const char *const two[] = { "0000:19:00.0", "0000:3b:00.0", NULL };
  g_autoptr(GPtrArray) issues = lcvm_board_policy_vm(&b->inv, b->modes, two, NULL);
  g_assert_cmpuint(issues->len, ==, 2);
  g_autofree char *text = lcvm_board_policy_text(issues);
  g_assert_true(g_str_has_prefix(text, "the VM passes 2 Hopper GPUs"));
  g_assert_nonnull(strstr(text, " (fix: set CVM_GPUS=all in the VM's .env"));
  g_assert_true(g_str_has_suffix(text, "(fix: lium-cvm gpu cc all --mode off --ppcie on)"));
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/board-policy/one-gpu-vm-needs-cc", test_one_gpu_vm_needs_cc);
  g_test_add_func("/board-policy/several-hopper-gpus-on-an-nvswitch-board-need-ppcie",
                  test_several_hopper_gpus_on_an_nvswitch_board_need_the_whole_board_in_ppcie);
  g_test_add_func("/board-policy/a-ppcie-vm-without-the-whole-board-is-refused",
                  test_a_ppcie_vm_without_every_nvswitch_and_gpu_of_the_board_is_refused);
  g_test_add_func("/board-policy/several-gpus-without-nvswitches-need-cc-each",
                  test_several_gpus_without_nvswitches_need_cc_each);
  g_test_add_func("/board-policy/blackwell-is-cc-only",
                  test_blackwell_is_cc_only_even_with_nvswitches);
  g_test_add_func("/board-policy/a-board-partly-in-ppcie",
                  test_a_board_partly_in_ppcie_is_a_board_issue);
  g_test_add_func("/board-policy/unknown-and-broken-modes-are-not-judged",
                  test_unknown_and_broken_modes_are_not_judged);
  g_test_add_func("/board-policy/text-joins-problems-and-fixes",
                  test_text_joins_problems_and_fixes);
  return g_test_run();
}
