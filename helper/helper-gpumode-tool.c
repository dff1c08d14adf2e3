/* SPDX-License-Identifier: MIT */
/* gpu-admin-tools for the GPU mode acts (see the header). gpu-admin-tools needs root (it maps
 * BARs and writes config space), so it runs only from a root-owned tree
 * (lcvm_gpu_admin_resolve, in helper_gpumode_check), never with anything of the caller's. */
#include "helper-gpumode-tool.h"
#include "helper-act.h"
#include "helper-tool.h"
#include "lcvm-error.h"
#include "lcvm-gpu-admin.h"

/* The tool prints a few lines per device; anything longer is not an answer it gives. */
#define TOOL_MAX_OUTPUT (1024 * 1024)

void
helper_gpumode_tool_run_clear(HelperGpuToolRun *r)
{
  g_free(r->out);
  g_free(r->err);
}

gboolean
helper_gpumode_tool_run(const char *const *argv, guint timeout_s, HelperGpuToolRun *run,
                        GError **error)
{
  const char *const env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", NULL };
  HelperTool tool = { .argv = argv, .envp = env, .cwd = "/" };
  HelperCaptureOptions capture = { .timeout_ms = timeout_s * 1000, .max_output = TOOL_MAX_OUTPUT };
  g_auto(HelperCaptured) done = { 0 };
  if (!helper_tool_run(&tool, &capture, &done, error)) {
    g_prefix_error(error, "cannot run gpu-admin-tools: ");
    return FALSE;
  }
  run->timed_out = done.timed_out;
  run->out = g_utf8_make_valid(done.out->str, (gssize)done.out->len);
  run->err = g_utf8_make_valid(done.err->str, (gssize)done.err->len);
  run->status = done.exited ? done.status : -1;
  return TRUE;
}

char *
helper_gpumode_tool_args(const char *const *argv)
{
  guint skip = 5; /* python -E -s -B tool */
  return g_strjoinv(" ", (char **)argv + MIN(skip, g_strv_length((char **)argv)));
}

gboolean
helper_gpumode_set_timed_out(GError **error, const char *what, guint timeout_s)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "%s did not finish within %u s, so gpu-admin-tools was killed", what, timeout_s);
  return FALSE;
}

static LcvmGpuAdminQuery
queries_for(const HelperGpuRequest *r)
{
  if (r->kind == LCVM_PCI_NVSWITCH)
    return LCVM_GPU_ADMIN_QUERY_PPCIE;
  /* the tool queries PPCIe on Hopper GPUs only (§A.1) */
  if (g_strcmp0(r->arch, "hopper") == 0)
    return LCVM_GPU_ADMIN_QUERY_CC | LCVM_GPU_ADMIN_QUERY_PPCIE;
  return LCVM_GPU_ADMIN_QUERY_CC;
}

LcvmGpuMode *
helper_gpumode_query_once(const HelperGpuRequest *r, guint timeout_s, GError **error)
{
  LcvmGpuAdminQuery queries = queries_for(r);
  g_auto(GStrv) argv = lcvm_gpu_admin_query_argv(r->tool, r->slot, queries, error);
  if (argv == NULL)
    return NULL;
  g_auto(HelperGpuToolRun) run = { 0 };
  if (!helper_gpumode_tool_run((const char *const *)argv, timeout_s, &run, error))
    return NULL;
  if (run.timed_out) {
    helper_gpumode_set_timed_out(error, "the mode query", timeout_s);
    helper_act_append_error(error, "; the device may be hung: see 'dmesg'");
    return NULL;
  }
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(r->slot, run.out, run.err, error);
  if (o == NULL)
    return NULL;
  g_autoptr(LcvmGpuMode) m =
      lcvm_gpu_mode_new(r->slot, r->kind == LCVM_PCI_GPU ? "gpu" : "nvswitch");
  m->queried_at = g_get_real_time() / G_USEC_PER_SEC;
  if (o->broken) {
    m->broken = TRUE;
    return g_steal_pointer(&m);
  }
  gboolean want_cc = (queries & LCVM_GPU_ADMIN_QUERY_CC) != 0;
  gboolean want_ppcie = (queries & LCVM_GPU_ADMIN_QUERY_PPCIE) != 0;
  if (run.status != 0 || (want_cc && o->cc == NULL) || (want_ppcie && o->ppcie == NULL)) {
    g_autofree char *quote = lcvm_gpu_admin_quote(o);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "gpu-admin-tools could not read the mode of %s (exit %d): %s", r->slot, run.status,
                quote);
    return NULL;
  }
  m->cc = g_strdup(want_cc ? o->cc : "unsupported");
  m->ppcie = g_strdup(want_ppcie ? o->ppcie : "unsupported");
  return g_steal_pointer(&m);
}
