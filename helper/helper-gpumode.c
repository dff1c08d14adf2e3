/* SPDX-License-Identifier: MIT */
/* GPU and NVSwitch modes (reference/gpu-and-host.md §A, reference/lium.md §5.4 and §8.12): the
 * acts, callable without a bus (see the header).
 *
 * gpu-admin-tools runs one device per run (helper-gpumode-tool.c), and the whole session is
 * killed when it overruns [tools] gpu_admin_tools_timeout. Even a query wakes the device and
 * writes its registers, so nothing here touches a device that a process holds open. A failed
 * step names itself and quotes the tool; a device that was on vfio-pci goes back there.
 * Answers are cached (helper-gpumode-cache.c). */
#include "helper-gpumode.h"
#include "helper-gpumode-cache.h"
#include "helper-gpumode-tool.h"
#include "helper-sanitize.h"
#include "helper-vfio.h"
#include "lcvm-error.h"
#include "lcvm-gpu-admin.h"
#include "lcvm-sysfs.h"

/* A step of the act under way; audit: it changes the device. */
#define STEP(r, audit, ...) helper_act_step((r)->step, (r)->step_data, -1, (audit), __VA_ARGS__)

HelperGpuRequest *
helper_gpumode_request_new(const LcvmConfig *config, const char *slot)
{
  HelperGpuRequest *r = g_new0(HelperGpuRequest, 1);
  r->config = config;
  r->slot = g_strdup(slot);
  return r;
}

void
helper_gpumode_request_free(HelperGpuRequest *r)
{
  g_free(r->slot);
  g_free(r->cc);
  g_free(r->ppcie);
  g_free(r->model);
  g_free(r->tool);
  g_free(r->result);
  g_free(r);
}

guint
helper_gpumode_tool_timeout(const LcvmConfig *config)
{
  return (guint)MIN(MAX(config->gpu_admin_tools_timeout, 1), 3600);
}

/* ---- device checks ---- */

static gboolean
check_not_held(HelperGpuRequest *r, GError **error)
{
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(r->config->sysfs_root, error);
  if (inv == NULL)
    return FALSE;
  lcvm_pci_find_holders(inv, r->config->dev_root, r->config->proc_root);
  LcvmPciDevice *d = lcvm_pci_inventory_find(inv, r->slot);
  if (d == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND, "%s is gone from the PCI bus", r->slot);
    return FALSE;
  }
  if (d->holders->len == 0)
    return TRUE;
  const LcvmPciHolder *h = d->holders->pdata[0];
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE,
              "%s is in use: process %d (%s) holds %s open, and gpu-admin-tools would reset or "
              "write the device under it; stop the VM that uses it first (lium-cvm stop NAME)",
              r->slot, h->pid, h->command, h->path);
  return FALSE;
}

/* Validates the slot against the host, fills kind/arch/model, refuses what the device cannot
 * do and a device held open; with the tool, resolves and trusts it. Worker thread. */
gboolean
helper_gpumode_check(HelperGpuRequest *r, gboolean with_tool, GError **error)
{
  const char *const slots[] = { r->slot, NULL };
  g_auto(GStrv) valid = NULL;
  if (g_str_equal(r->slot, "all")) {
    g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                        "name one PCI slot (DDDD:BB:DD.F): modes are set one device at a time");
    return FALSE;
  }
  valid = helper_vfio_resolve_slots(r->config, slots, error);
  if (valid == NULL)
    return FALSE;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(r->config->sysfs_root, error);
  if (inv == NULL)
    return FALSE;
  const LcvmPciDevice *d = lcvm_pci_inventory_find(inv, r->slot);
  r->kind = d->kind;
  r->arch = d->arch;
  g_free(r->model);
  r->model = g_strdup(d->model);
  if (with_tool && r->arch == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s (%s) has no confidential computing mode: only Hopper and Blackwell GPUs and "
                "their NVSwitches do",
                r->slot, r->model);
    return FALSE;
  }
  if (r->kind == LCVM_PCI_NVSWITCH && r->bus_reset) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is an NVSwitch: NVSwitches are never bus-reset (only the GPUs of a VM are)",
                r->slot);
    return FALSE;
  }
  if (r->kind == LCVM_PCI_NVSWITCH && r->cc != NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is an NVSwitch: it has no CC mode, only PPCIe (send an empty cc)", r->slot);
    return FALSE;
  }
  if (r->kind == LCVM_PCI_GPU && r->ppcie != NULL && g_strcmp0(r->arch, "hopper") != 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s (%s, %s) has no PPCIe mode in gpu-admin-tools (Hopper GPUs only): send an "
                "empty ppcie",
                r->slot, r->model, r->arch);
    return FALSE;
  }
  if (!check_not_held(r, error))
    return FALSE;
  if (with_tool) {
    g_free(r->tool);
    r->tool = lcvm_gpu_admin_resolve(r->config->gpu_admin_tools, error);
    if (r->tool == NULL)
      return FALSE;
  }
  return TRUE;
}

/* ---- recovery: PCIe remove + rescan (§8.12: the only thing that recovers the wedge) ---- */

typedef struct {
  char *dir;
  gboolean present;
} Presence;

static gboolean
presence_reached(gpointer p)
{
  const Presence *w = p;
  return g_file_test(w->dir, G_FILE_TEST_IS_DIR) == w->present;
}

static gboolean
recover(HelperGpuRequest *r, GError **error)
{
  guint timeout_ms = (guint)MIN(MAX(r->config->bind_timeout, 1), 3600) * 1000;
  g_autofree char *dir = lcvm_pci_device_dir(r->config->sysfs_root, r->slot);
  g_autofree char *bus = g_build_filename(r->config->sysfs_root, "bus", "pci", NULL);
  STEP(r, TRUE, "%s reports itself broken: PCIe remove and rescan", r->slot);
  if (!lcvm_sysfs_write(dir, "remove", "1", error))
    return FALSE;
  Presence gone = { dir, FALSE };
  if (!lcvm_sysfs_wait(presence_reached, &gone, timeout_ms)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s did not leave the bus within %u s",
                r->slot, timeout_ms / 1000);
    return FALSE;
  }
  if (!lcvm_sysfs_write(bus, "rescan", "1", error))
    return FALSE;
  Presence back = { dir, TRUE };
  if (!lcvm_sysfs_wait(presence_reached, &back, timeout_ms)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s did not come back after a PCIe rescan within %u s: check 'lspci' and "
                "'dmesg'; the host may need a power cycle",
                r->slot, timeout_ms / 1000);
    return FALSE;
  }
  /* The kernel probed a driver for the new device: gpu-admin-tools needs it without one. */
  return helper_vfio_release(r->config, r->slot, error);
}

/* A query that recovers a broken device once. */
static LcvmGpuMode *
query_recovering(HelperGpuRequest *r, GError **error)
{
  g_autoptr(LcvmGpuMode) m =
      helper_gpumode_query_once(r, helper_gpumode_tool_timeout(r->config), error);
  if (m == NULL || !m->broken)
    return g_steal_pointer(&m);
  if (!recover(r, error))
    return NULL;
  g_clear_pointer(&m, lcvm_gpu_mode_free);
  m = helper_gpumode_query_once(r, helper_gpumode_tool_timeout(r->config), error);
  if (m != NULL && m->broken) {
    helper_gpumode_cache_put(r->config, m);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s is still broken after a PCIe remove and rescan: power-cycle the host", r->slot);
    return NULL;
  }
  return g_steal_pointer(&m);
}

/* ---- SetGpuMode ---- */

static const char *
mode_of(const LcvmGpuMode *m, LcvmGpuKnob knob)
{
  return knob == LCVM_GPU_KNOB_CC ? m->cc : m->ppcie;
}

/* The tool's set with reset for one knob. After a failure, a device that reports itself
 * broken is recovered and accepted when it then shows the mode asked for. */
static gboolean
set_knob(HelperGpuRequest *r, LcvmGpuKnob knob, const char *mode, GError **error)
{
  g_autofree char *name = g_strdup_printf("%s %s", lcvm_gpu_knob_name(knob), mode);
  g_auto(GStrv) argv = lcvm_gpu_admin_set_argv(r->tool, r->slot, knob, mode, error);
  if (argv == NULL)
    return FALSE;
  g_autofree char *args = helper_gpumode_tool_args((const char *const *)argv);
  STEP(r, TRUE, "%s on %s: gpu-admin-tools %s", name, r->slot, args);
  g_auto(HelperGpuToolRun) run = { 0 };
  if (!helper_gpumode_tool_run((const char *const *)argv, helper_gpumode_tool_timeout(r->config),
                               &run, error))
    return FALSE;
  if (run.timed_out) {
    helper_gpumode_set_timed_out(error, name, helper_gpumode_tool_timeout(r->config));
    helper_act_append_error(error, "; the device may hold a half-written setting: run the same "
                                   "'lium-cvm gpu cc' again (see 'dmesg' if it hangs again)");
    return FALSE;
  }
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(r->slot, run.out, run.err, error);
  if (o == NULL)
    return FALSE;
  if (run.status == 0 && o->reset[knob] && g_strcmp0(o->set[knob], mode) == 0 && !o->broken)
    return TRUE;
  g_autofree char *quote = lcvm_gpu_admin_quote(o);
  if (knob == LCVM_GPU_KNOB_PPCIE && o->ppcie_fw_too_old) {
    if (g_str_equal(mode, "off")) {
      r->no_fw_ppcie = TRUE;
      STEP(r, FALSE, "%s: the firmware of %s has no PPCIe setting, so PPCIe is off", name, r->slot);
      return TRUE;
    }
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "the firmware of %s is too old for Protected PCIe (gpu-admin-tools: %s): update "
                "the GPU firmware first",
                r->slot, quote);
    return FALSE;
  }
  g_autoptr(GError) query_error = NULL;
  g_autoptr(LcvmGpuMode) now =
      helper_gpumode_query_once(r, helper_gpumode_tool_timeout(r->config), &query_error);
  if (now != NULL && now->broken) {
    g_clear_pointer(&now, lcvm_gpu_mode_free);
    now = query_recovering(r, error);
    if (now == NULL)
      return FALSE;
    if (g_strcmp0(mode_of(now, knob), mode) == 0) {
      STEP(r, FALSE, "%s: %s recovered and reports %s %s", name, r->slot, lcvm_gpu_knob_name(knob),
           mode);
      return TRUE;
    }
  }
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "gpu-admin-tools failed (exit %d): %s",
              run.status, quote);
  return FALSE;
}

static gboolean
verify(HelperGpuRequest *r, GError **error)
{
  STEP(r, FALSE, "verifying %s", r->slot);
  g_autoptr(LcvmGpuMode) m = query_recovering(r, error);
  if (m == NULL)
    return FALSE;
  helper_gpumode_cache_put(r->config, m);
  gboolean cc_ok = r->cc == NULL || g_strcmp0(m->cc, r->cc) == 0;
  gboolean ppcie_ok = r->ppcie == NULL || r->no_fw_ppcie || g_strcmp0(m->ppcie, r->ppcie) == 0;
  if (!cc_ok || !ppcie_ok) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s reports CC %s and PPCIe %s after the switch, not what was asked (CC %s, "
                "PPCIe %s): run the same 'lium-cvm gpu cc' again; if it persists see 'dmesg'",
                r->slot, m->cc, m->ppcie, r->cc ? r->cc : "unchanged",
                r->ppcie ? r->ppcie : "unchanged");
    return FALSE;
  }
  g_free(r->result);
  r->result = g_strdup_printf("%s: CC %s, PPCIe %s", r->slot, m->cc, m->ppcie);
  STEP(r, FALSE, "%s", r->result);
  return TRUE;
}

/* Field order (§A.14): towards CC, PPCIe off first; towards PPCIe, CC off first. */
static gboolean
apply_modes(HelperGpuRequest *r, GError **error)
{
  gboolean ppcie_first = g_strcmp0(r->ppcie, "on") != 0;
  const char *first = ppcie_first ? r->ppcie : r->cc;
  const char *second = ppcie_first ? r->cc : r->ppcie;
  LcvmGpuKnob k1 = ppcie_first ? LCVM_GPU_KNOB_PPCIE : LCVM_GPU_KNOB_CC;
  LcvmGpuKnob k2 = ppcie_first ? LCVM_GPU_KNOB_CC : LCVM_GPU_KNOB_PPCIE;
  if (first != NULL && !set_knob(r, k1, first, error)) {
    g_prefix_error(error, "step '%s %s' failed: ", lcvm_gpu_knob_name(k1), first);
    return FALSE;
  }
  if (second != NULL && !set_knob(r, k2, second, error)) {
    g_prefix_error(error, "step '%s %s' failed: ", lcvm_gpu_knob_name(k2), second);
    return FALSE;
  }
  if (!verify(r, error)) {
    g_prefix_error(error, "step 'verify' failed: ");
    return FALSE;
  }
  return TRUE;
}

static gboolean
rebind(HelperGpuRequest *r, gboolean ok, GError **error)
{
  STEP(r, TRUE, "binding %s to vfio-pci again", r->slot);
  g_autoptr(GError) local = NULL;
  if (helper_vfio_rebind(r->config, r->slot, &local)) {
    if (!ok)
      helper_act_append_error(error, "; %s is bound to vfio-pci again, as it was", r->slot);
    return ok;
  }
  if (ok) {
    g_propagate_prefixed_error(error, g_steal_pointer(&local),
                               "the mode is set, but binding %s back to vfio-pci failed "
                               "(run 'lium-cvm gpu bind %s'): ",
                               r->slot, r->slot);
    return FALSE;
  }
  helper_act_append_error(error,
                          "; binding %s back to vfio-pci failed too (%s): run 'lium-cvm gpu bind "
                          "%s' once the device is healthy",
                          r->slot, local->message, r->slot);
  return FALSE;
}

gboolean
helper_gpumode_set(HelperGpuRequest *r, HelperActStep step, gpointer step_data, GError **error)
{
  r->step = step;
  r->step_data = step_data;
  if (!check_not_held(r, error))
    return FALSE;
  g_auto(LcvmPciState) st = { 0 };
  lcvm_pci_state_read(r->config->sysfs_root, r->slot, &st);
  gboolean was_bound = g_strcmp0(st.driver, LCVM_VFIO_DRIVER) == 0;
  if (st.driver != NULL && !was_bound) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s is bound to %s, which drives the device's firmware queues itself: bind it "
                "to vfio-pci first (lium-cvm gpu bind %s)",
                r->slot, st.driver, r->slot);
    return FALSE;
  }
  if (st.driver != NULL || st.driver_override != NULL) {
    STEP(r, TRUE,
         "taking %s off vfio-pci and clearing driver_override (mode changes do "
         "nothing while vfio-pci holds it)",
         r->slot);
    if (!helper_vfio_release(r->config, r->slot, error)) {
      g_prefix_error(error, "step 'release from vfio-pci' failed: ");
      return FALSE;
    }
  }
  gboolean ok = apply_modes(r, error);
  if (was_bound && !rebind(r, ok, error))
    return FALSE;
  if (ok)
    STEP(r, FALSE, "%s%s", r->result, was_bound ? " (bound to vfio-pci)" : "");
  return ok;
}

/* ---- ResetGpu ---- */

gboolean
helper_gpumode_reset(HelperGpuRequest *r, HelperActStep step, gpointer step_data, GError **error)
{
  r->step = step;
  r->step_data = step_data;
  if (!check_not_held(r, error))
    return FALSE;
  if (r->bus_reset) {
    const char *const slots[] = { r->slot, NULL };
    if (!helper_sanitize_gpus(r->config, slots, r->step, r->step_data, error))
      return FALSE;
  } else {
    g_autofree char *dir = lcvm_pci_device_dir(r->config->sysfs_root, r->slot);
    STEP(r, TRUE, "resetting %s (sysfs reset: the kernel picks the method)", r->slot);
    if (!lcvm_sysfs_write(dir, "reset", "1", error)) {
      helper_act_append_error(error,
                              " (a device without a usable reset method has no 'reset' file)");
      return FALSE;
    }
  }
  helper_gpumode_cache_drop(r->config, r->slot);
  STEP(r, FALSE,
       "%s was reset; a pending CC or PPCIe setting is now active, so its cached mode "
       "was dropped ('lium-cvm lsgpu --query' reads it again)",
       r->slot);
  return TRUE;
}

/* ---- QueryGpuMode ---- */

LcvmGpuMode *
helper_gpumode_query(HelperGpuRequest *r, guint timeout_s, GError **error)
{
  g_autoptr(LcvmGpuMode) m =
      helper_gpumode_check(r, TRUE, error) ? helper_gpumode_query_once(r, timeout_s, error) : NULL;
  if (m == NULL)
    return NULL;
  helper_gpumode_cache_put(r->config, m);
  if (m->broken) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s reports itself broken (its config space answers, its BARs do "
                "not): 'lium-cvm gpu cc %s --mode …' recovers it by a PCIe remove "
                "and rescan",
                r->slot, r->slot);
    return NULL;
  }
  return g_steal_pointer(&m);
}
