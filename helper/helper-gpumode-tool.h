/* SPDX-License-Identifier: MIT */
/* Running gpu-admin-tools for the GPU mode acts (helper-gpumode.c): the trusted tool with
 * lcvm-gpu-admin's fixed argv, a clean environment and "/" as cwd, through the trusted-tool
 * runner (helper-tool.h: own session, killed whole at the timeout), and its mode query. */
#pragma once
#include "helper-gpumode.h"

typedef struct {
  int status; /* exit status; -1 when it ended by a signal */
  gboolean timed_out;
  char *out;
  char *err;
} HelperGpuToolRun;

void helper_gpumode_tool_run_clear(HelperGpuToolRun *r);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HelperGpuToolRun, helper_gpumode_tool_run_clear)

/* Runs argv (from lcvm-gpu-admin) to its end or timeout_s; FALSE only when it cannot start. */
gboolean helper_gpumode_tool_run(const char *const *argv, guint timeout_s, HelperGpuToolRun *run,
                                 GError **error);
/* "--gpu-bdf=… --set-cc-mode=on …": what the tool was asked, for messages. */
char *helper_gpumode_tool_args(const char *const *argv);
/* "WHAT did not finish within N s, so gpu-admin-tools was killed"; returns FALSE. */
gboolean helper_gpumode_set_timed_out(GError **error, const char *what, guint timeout_s);
/* One query run of r->tool on r->slot (after helper_gpumode_check). A broken device is an
 * answer (m->broken), not an error. */
LcvmGpuMode *helper_gpumode_query_once(const HelperGpuRequest *r, guint timeout_s, GError **error);
