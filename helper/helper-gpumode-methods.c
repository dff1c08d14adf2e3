/* SPDX-License-Identifier: MIT */
/* QueryGpuMode, SetGpuMode and ResetGpu for the method table (helper-methods.c): each call's
 * arguments checked and kept as a HelperGpuRequest, the device's lock, and thin adapters from
 * the call or its Job to the acts of helper-gpumode.c. Nothing here touches a device. */
#include "helper-gpumode.h"
#include "helper-vfio.h"
#include "lcvm-error.h"
#include "lcvm-gpu-admin.h"
#include "lcvm-text.h"

/* QueryGpuMode is a plain call: its tool run must end well inside the 25 s D-Bus timeout. */
#define QUERY_CALL_TIMEOUT_S 20

typedef struct {
  HelperGpuRequest *request;
  char *lock;
  gboolean setting; /* SetGpuMode (else ResetGpu or a query) */
} GpuCall;

static void
gpu_call_free(gpointer p)
{
  GpuCall *c = p;
  helper_gpumode_request_free(c->request);
  g_free(c->lock);
  g_free(c);
}

/* Every GPU method names its device first; a slot that is not even well-formed is refused
 * here, before a lock is taken under its name ("all" goes on to the act's own refusal). */
static GpuCall *
gpu_call_new(HelperCall *call, GError **error)
{
  const char *slot = NULL;
  g_variant_get_child(call->args, 0, "&s", &slot);
  if (!g_str_equal(slot, "all") && !helper_vfio_slot_shape_ok(slot, error))
    return NULL;
  GpuCall *c = g_new0(GpuCall, 1);
  c->request = helper_gpumode_request_new(call->daemon->config, slot);
  c->lock = helper_device_lock_key(slot);
  call->data = c;
  call->destroy = gpu_call_free;
  return c;
}

GStrv
helper_gpumode_locks(HelperCall *call)
{
  GpuCall *c = call->data;
  const char *const keys[] = { c->lock, NULL };
  return g_strdupv((char **)keys);
}

/* ---- QueryGpuMode ---- */

gboolean
helper_gpumode_query_validate(HelperCall *call, GError **error)
{
  return gpu_call_new(call, error) != NULL;
}

static GVariant *
mode_dict(const HelperGpuRequest *r, const LcvmGpuMode *m)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&b, "{sv}", "slot", g_variant_new_string(m->slot));
  g_variant_builder_add(&b, "{sv}", "kind", g_variant_new_string(m->kind));
  g_variant_builder_add(&b, "{sv}", "model", g_variant_new_string(r->model));
  g_variant_builder_add(&b, "{sv}", "cc", g_variant_new_string(m->cc));
  g_variant_builder_add(&b, "{sv}", "ppcie", g_variant_new_string(m->ppcie));
  g_variant_builder_add(&b, "{sv}", "queried_at", g_variant_new_int64(m->queried_at));
  return g_variant_builder_end(&b);
}

GVariant *
helper_gpumode_query_call(HelperDaemon *d, gpointer data, GError **error)
{
  GpuCall *c = data;
  guint timeout_s = MIN(helper_gpumode_tool_timeout(d->config), QUERY_CALL_TIMEOUT_S);
  g_autoptr(LcvmGpuMode) m = helper_gpumode_query(c->request, timeout_s, error);
  return m ? g_variant_new("(@a{sv})", mode_dict(c->request, m)) : NULL;
}

/* ---- SetGpuMode and ResetGpu ---- */

/* The checks run in a worker (they scan /proc for holders) before the device's lock is taken
 * and the job starts. */
gboolean
helper_gpumode_preflight(HelperCall *call, GError **error)
{
  GpuCall *c = call->data;
  return helper_gpumode_check(c->request, c->setting, error);
}

/* cc ∈ {"", on, off, devtools}, ppcie ∈ {"", on, off}; "" leaves that mode alone. */
static gboolean
check_modes(const char *cc, const char *ppcie, GError **error)
{
  if (cc[0] != '\0' && !lcvm_gpu_mode_settable(LCVM_GPU_KNOB_CC, cc)) {
    g_autofree char *shown = lcvm_text_for_message(cc);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "'%s' is not a CC mode: on, off, devtools, or empty to leave it", shown);
    return FALSE;
  }
  if (ppcie[0] != '\0' && !lcvm_gpu_mode_settable(LCVM_GPU_KNOB_PPCIE, ppcie)) {
    g_autofree char *shown = lcvm_text_for_message(ppcie);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "'%s' is not a PPCIe mode: on, off, or empty to leave it", shown);
    return FALSE;
  }
  if (cc[0] == '\0' && ppcie[0] == '\0') {
    g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                        "nothing to set: give a CC mode, a PPCIe mode or both");
    return FALSE;
  }
  if (g_str_equal(ppcie, "on") && (g_str_equal(cc, "on") || g_str_equal(cc, "devtools"))) {
    g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                        "CC and Protected PCIe exclude each other: a board is either in CC mode "
                        "(PPCIe off) or in PPCIe mode (CC off)");
    return FALSE;
  }
  return TRUE;
}

gboolean
helper_gpumode_set_validate(HelperCall *call, GError **error)
{
  const char *cc = NULL, *ppcie = NULL;
  g_variant_get_child(call->args, 1, "&s", &cc);
  g_variant_get_child(call->args, 2, "&s", &ppcie);
  if (!check_modes(cc, ppcie, error))
    return FALSE;
  GpuCall *c = gpu_call_new(call, error);
  if (c == NULL)
    return FALSE;
  c->request->cc = cc[0] ? g_strdup(cc) : NULL;
  c->request->ppcie = ppcie[0] ? g_strdup(ppcie) : NULL;
  c->setting = TRUE;
  return TRUE;
}

gboolean
helper_gpumode_reset_validate(HelperCall *call, GError **error)
{
  GpuCall *c = gpu_call_new(call, error);
  if (c == NULL)
    return FALSE;
  c->request->bus_reset = (call->flags & LCVM_RESET_GPU_BUS) != 0;
  return TRUE;
}

gboolean
helper_gpumode_set_job(HelperJob *job, gpointer data, GError **error)
{
  GpuCall *c = data;
  return helper_gpumode_set(c->request, helper_act_job_step, job, error);
}

gboolean
helper_gpumode_reset_job(HelperJob *job, gpointer data, GError **error)
{
  GpuCall *c = data;
  return helper_gpumode_reset(c->request, helper_act_job_step, job, error);
}
