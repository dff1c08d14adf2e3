/* SPDX-License-Identifier: MIT */
/* The runner for trusted root tools (gpu-admin-tools, docker): programs that must run as root,
 * from a root-owned path the caller has checked (lcvm_trusted_path), with a fixed argv.
 * Each runs with the caller's whole environment (nothing of the helper's), the caller's cwd,
 * stdin from /dev/null, no fd but its pipes, in a session of its own; at the timeout the whole
 * session is killed, so nothing it forked outlives the call. Output is collected and bounded
 * as helper-capture.h says. Blocks: worker threads only. Anything run unprivileged goes
 * through helper_spawn_capture (helper-spawn.h) instead. */
#pragma once
#include "helper-capture.h"

typedef struct {
  const char *const *argv; /* argv[0]: absolute path, never looked up in PATH */
  const char *const *envp; /* the tool's whole environment */
  const char *cwd;
  gboolean merge_stderr; /* stderr into the stdout pipe (and its lines), as one progress log */
} HelperTool;

/* Runs tool to its end or capture->timeout_ms. FALSE (error set) only when it could not be
 * started; how it ended is in result. */
gboolean helper_tool_run(const HelperTool *tool, const HelperCaptureOptions *capture,
                         HelperCaptured *result, GError **error);
