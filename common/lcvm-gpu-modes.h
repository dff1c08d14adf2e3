/* SPDX-License-Identifier: MIT */
/* The cache of GPU/NVSwitch CC and PPCIe modes: state_dir/gpu-modes.json, written (atomically,
 * mode 0644) only by the helper after it asked gpu-admin-tools, read by the helper at start and
 * by the frontend (`lsgpu`, `check`), which must never run the tool itself: a query wakes the
 * device and writes its registers. A missing file is an empty cache, never an error. */
#pragma once
#include <glib.h>

#include "lcvm-layout.h" /* LCVM_GPU_MODES_FILE */

/* Host.ResetGpu flags: a secondary bus reset of the GPU's own bridge (the start path's
 * sanitize, reference/field-2026.md §1) instead of the kernel's choice of method. */
#define LCVM_RESET_GPU_BUS (1u << 0)

typedef struct {
  char *slot;
  char *kind;        /* "gpu" or "nvswitch" */
  char *cc;          /* off|on|devtools|invalid-devtools-only-fix-by-setting-cc-mode|unsupported */
  char *ppcie;       /* on|off|unsupported */
  gint64 queried_at; /* unix seconds */
  gboolean broken;   /* the last query found the device broken (cc/ppcie then unknown: NULL) */
} LcvmGpuMode;

LcvmGpuMode *lcvm_gpu_mode_new(const char *slot, const char *kind);
LcvmGpuMode *lcvm_gpu_mode_copy(const LcvmGpuMode *m);
void lcvm_gpu_mode_free(LcvmGpuMode *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmGpuMode, lcvm_gpu_mode_free)

/* slot → LcvmGpuMode*, owning both. An absent file gives an empty table; an unreadable or
 * malformed one an error. Entries with an invalid slot or value are skipped. */
GHashTable *lcvm_gpu_modes_load(const char *state_dir, GError **error);
gboolean lcvm_gpu_modes_save(const char *state_dir, GHashTable *modes, GError **error);
GHashTable *lcvm_gpu_modes_new(void);

/* "3m", "2h", "5d" (or "now") since queried_at. */
char *lcvm_gpu_mode_age(const LcvmGpuMode *m, gint64 now);

/* TRUE when every one of slots has a cached PPCIe mode "on": a board deliberately in
 * Protected PCIe mode (all GPUs and NVSwitches). */
gboolean lcvm_gpu_modes_board_ppcie(GHashTable *modes, const char *const *slots);
