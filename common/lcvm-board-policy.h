/* SPDX-License-Identifier: MIT */
/* Lium's GPU mode policy (reference/field-2026.md §2, Lium #1262): one GPU per VM → CC on,
 * PPCIe off; several Hopper GPUs of an NVSwitch board in one VM → Protected PCIe on all of
 * the board's GPUs and NVSwitches, every one of them passed to that VM (per-GPU CC there
 * silently kills NVLink); Blackwell → CC only, never PPCIe. The ONE place that decides it:
 * `check`, `new`, `run` (the helper's start validation) and `gpu cc` all ask here. Pure:
 * it reads nothing, it judges the PCI inventory and the cached modes it is given. A mode
 * that is not cached (or a device last seen broken) is not judged: `check` reports those. */
#pragma once
#include <glib.h>

#include "lcvm-pci.h"

/* One violation: what is wrong and the exact command (or definition change) that fixes it. */
typedef struct {
  char *problem;
  char *fix;
} LcvmPolicyIssue;

/* The violations of a VM passing gpus and nvswitches (canonical slots, NULL-terminated;
 * either may be NULL) on the board inv describes, by the modes cached in modes
 * (slot → LcvmGpuMode). An empty array when it complies. */
GPtrArray *lcvm_board_policy_vm(LcvmPciInventory *inv, GHashTable *modes, const char *const *gpus,
                                const char *const *nvswitches);

/* The violations of the board itself, whatever the VMs: PPCIe on a Blackwell GPU, and a
 * Hopper NVSwitch board partly in Protected PCIe mode. */
GPtrArray *lcvm_board_policy_board(LcvmPciInventory *inv, GHashTable *modes);

/* "PROBLEM (fix: FIX); PROBLEM (fix: FIX)" for an error message. */
char *lcvm_board_policy_text(GPtrArray *issues);
