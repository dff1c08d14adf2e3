/* SPDX-License-Identifier: MIT */
/* NVIDIA gpu-admin-tools (nvidia_gpu_tools.py, reference/gpu-and-host.md §A): the one argv
 * builder, the check that root may run the configured copy, and the line-by-line reader of what
 * it prints. The argv is built from validated values only (a canonical slot, a mode from a fixed
 * list) and always names the full DDDD:BB:DD.F, because the tool matches BDFs by substring. A
 * line the reader does not know is an error: a mode is never guessed. Nothing here runs it. */
#pragma once
#include <glib.h>

/* The interpreter the tool runs under: -E -s (no PYTHON* variables, no user site) and -B (no
 * bytecode written into the root-owned tree). Not -I: the tool imports its own packages. */
#define LCVM_GPU_ADMIN_PYTHON "/usr/bin/python3"

typedef enum {
  LCVM_GPU_KNOB_CC,
  LCVM_GPU_KNOB_PPCIE,
} LcvmGpuKnob;

/* What one run may ask: a query (either or both modes), or one set with reset. */
typedef enum {
  LCVM_GPU_ADMIN_QUERY_CC = 1 << 0,
  LCVM_GPU_ADMIN_QUERY_PPCIE = 1 << 1,
} LcvmGpuAdminQuery;

/* "on", "off", "devtools" for CC; "on", "off" for PPCIe (what a caller may ask to set). */
gboolean lcvm_gpu_mode_settable(LcvmGpuKnob knob, const char *mode);
const char *lcvm_gpu_knob_name(LcvmGpuKnob knob); /* "CC", "PPCIe" */

/* The configured tool, resolved, when root may run it: the script and every directory above it
 * root-owned and not group/other-writable (lcvm_trusted_path), and so is everything in the
 * script's own directory tree (it imports cli/, gpu/, pci/ … from there). The error says how to
 * install it safely. */
char *lcvm_gpu_admin_resolve(const char *configured, GError **error);

/* [python, -E, -s, -B, tool, --gpu-bdf=SLOT, …]. slot must be canonical; queries non-zero. */
GStrv lcvm_gpu_admin_query_argv(const char *tool, const char *slot, LcvmGpuAdminQuery queries,
                                GError **error);
/* … --set-cc-mode=MODE --reset-after-cc-mode-switch (or the PPCIe pair). */
GStrv lcvm_gpu_admin_set_argv(const char *tool, const char *slot, LcvmGpuKnob knob,
                              const char *mode, GError **error);

/* What one run said about the device it was asked about. */
typedef struct {
  char *selected;            /* the device line after "Selected " (NULL: none) */
  char *cc;                  /* "CC mode is X" (NULL: not reported) */
  char *ppcie;               /* "PPCIe mode is X" */
  char *set[2];              /* "… mode set to X" per LcvmGpuKnob */
  gboolean reset[2];         /* "… was reset to apply the new … mode." per LcvmGpuKnob */
  gboolean broken;           /* the tool found it broken ("[broken, cfg space working …]") */
  gboolean ppcie_fw_too_old; /* "does not support PPCIe on current FW" */
  GPtrArray *problems;       /* char*: ERROR/CRITICAL messages and exception lines, in order */
  char *last_stderr;         /* the last non-empty stderr line, for quoting */
} LcvmGpuAdminOutput;

/* Reads both streams. Fails (LCVM_ERROR_FAILED, quoting the line and its stream) on a line of
 * no known form, a mode value outside the tool's set, or a mode line about another device. */
LcvmGpuAdminOutput *lcvm_gpu_admin_parse(const char *slot, const char *out, const char *err,
                                         GError **error);
void lcvm_gpu_admin_output_free(LcvmGpuAdminOutput *o);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmGpuAdminOutput, lcvm_gpu_admin_output_free)

/* The tool's own words for a failure: its problems joined, else its last stderr line, else
 * "no output". */
char *lcvm_gpu_admin_quote(const LcvmGpuAdminOutput *o);
