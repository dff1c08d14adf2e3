/* SPDX-License-Identifier: MIT */
/* GPU and NVSwitch modes (reference/gpu-and-host.md §A, reference/lium.md §5.4 and §8.12).
 *
 * gpu-admin-tools needs root (it maps BARs and writes config space), so it runs only from a
 * root-owned tree (lcvm_gpu_admin_resolve), with the fixed argv of lcvm-gpu-admin, a clean
 * environment, "/" as cwd, stdin from /dev/null, in a session of its own, one device per run,
 * and the whole session is killed when it overruns [tools] gpu_admin_tools_timeout. Even a
 * query wakes the device and writes its registers, so nothing here touches a device that a
 * process holds open. A failed step names itself and quotes the tool; a device that was on
 * vfio-pci goes back there. Answers are cached in memory and in state_dir/gpu-modes.json. */
#include "helper-gpumode.h"
#include "helper-sanitize.h"
#include "helper-tool.h"
#include "helper-vfio.h"
#include "lcvm-error.h"
#include "lcvm-text.h"
#include "lcvm-gpu-admin.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-pci.h"
#include "lcvm-sysfs.h"
#include <unistd.h>

/* QueryGpuMode is a plain call: its tool run must end well inside the 25 s D-Bus timeout. */
#define QUERY_CALL_TIMEOUT_S 20

typedef struct {
  const LcvmConfig *config;
  char *slot;
  char *lock;
  LcvmPciKind kind;
  const char *arch; /* lcvm-pci's static string */
  char *model;
  char *tool;           /* resolved, trusted; NULL for a reset */
  char *cc;             /* SetGpuMode: NULL leaves the CC mode alone */
  char *ppcie;          /* SetGpuMode: NULL leaves the PPCIe mode alone */
  gboolean setting;     /* SetGpuMode (else ResetGpu or a query) */
  gboolean bus_reset;   /* ResetGpu with LCVM_RESET_GPU_BUS */
  HelperJob *job;       /* while a job runs */
  gboolean no_fw_ppcie; /* the firmware has no PPCIe setting */
  char *result;         /* "CC on, PPCIe off" once verified */
} GpuCall;

static void
gpu_call_free(gpointer p)
{
  GpuCall *c = p;
  g_free(c->slot);
  g_free(c->lock);
  g_free(c->model);
  g_free(c->tool);
  g_free(c->cc);
  g_free(c->ppcie);
  g_free(c->result);
  g_free(c);
}

static void step(GpuCall *c, gboolean audit, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* A job message; with audit, also an audit record (the steps that change the device). */
static void
step(GpuCall *c, gboolean audit, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  if (c->job == NULL)
    return;
  helper_job_step(c->job, -1, "%s", msg);
  if (audit)
    helper_job_audit_step(c->job, msg);
}

static void append_to_error(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
append_to_error(GError **error, const char *fmt, ...)
{
  if (error == NULL || *error == NULL)
    return;
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *more = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  char *m = g_strconcat((*error)->message, more, NULL);
  g_free((*error)->message);
  (*error)->message = m;
}

/* ---- the cache ---- */

static GMutex cache_mutex;
static GHashTable *cache_table; /* slot → LcvmGpuMode; read from the state dir on first use */

static GHashTable *
cache_locked(const LcvmConfig *config)
{
  if (cache_table != NULL)
    return cache_table;
  g_autoptr(GError) error = NULL;
  cache_table = lcvm_gpu_modes_load(config->state_dir, &error);
  if (cache_table == NULL) {
    g_warning("starting with an empty GPU mode cache: %s", error->message);
    cache_table = lcvm_gpu_modes_new();
  }
  return cache_table;
}

static void
cache_save_locked(const LcvmConfig *config)
{
  g_autoptr(GError) error = NULL;
  if (!lcvm_gpu_modes_save(config->state_dir, cache_table, &error))
    g_warning("cannot write the GPU mode cache in %s: %s", config->state_dir, error->message);
}

static void
cache_put(const LcvmConfig *config, const LcvmGpuMode *m)
{
  g_mutex_lock(&cache_mutex);
  g_hash_table_replace(cache_locked(config), g_strdup(m->slot), lcvm_gpu_mode_copy(m));
  cache_save_locked(config);
  g_mutex_unlock(&cache_mutex);
}

static void
cache_drop(const LcvmConfig *config, const char *slot)
{
  g_mutex_lock(&cache_mutex);
  if (g_hash_table_remove(cache_locked(config), slot))
    cache_save_locked(config);
  g_mutex_unlock(&cache_mutex);
}

/* ---- running the tool ---- */

/* The tool prints a few lines per device; anything longer is not an answer it gives. */
#define TOOL_MAX_OUTPUT (1024 * 1024)

typedef struct {
  int status; /* exit status; -1 when it ended by a signal */
  gboolean timed_out;
  char *out;
  char *err;
} ToolRun;

static void
tool_run_clear(ToolRun *r)
{
  g_free(r->out);
  g_free(r->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(ToolRun, tool_run_clear)

/* Runs argv (from lcvm-gpu-admin) to its end or its timeout, in this worker thread. */
static gboolean
run_tool(const char *const *argv, guint timeout_s, ToolRun *run, GError **error)
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

/* "--gpu-bdf=… --set-cc-mode=on …": what the tool was asked, for messages. */
static char *
tool_args(const char *const *argv)
{
  guint skip = 5; /* python -E -s -B tool */
  return g_strjoinv(" ", (char **)argv + MIN(skip, g_strv_length((char **)argv)));
}

static guint
job_timeout(const GpuCall *c)
{
  return (guint)MIN(MAX(c->config->gpu_admin_tools_timeout, 1), 3600);
}

/* ---- query ---- */

static LcvmGpuAdminQuery
queries_for(const GpuCall *c)
{
  if (c->kind == LCVM_PCI_NVSWITCH)
    return LCVM_GPU_ADMIN_QUERY_PPCIE;
  /* the tool queries PPCIe on Hopper GPUs only (§A.1) */
  if (g_strcmp0(c->arch, "hopper") == 0)
    return LCVM_GPU_ADMIN_QUERY_CC | LCVM_GPU_ADMIN_QUERY_PPCIE;
  return LCVM_GPU_ADMIN_QUERY_CC;
}

static gboolean
set_timed_out(GError **error, const char *what, guint timeout_s)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "%s did not finish within %u s, so gpu-admin-tools was killed", what, timeout_s);
  return FALSE;
}

/* One query run. A broken device is an answer (m->broken), not an error. */
static LcvmGpuMode *
query_once(GpuCall *c, guint timeout_s, GError **error)
{
  LcvmGpuAdminQuery queries = queries_for(c);
  g_auto(GStrv) argv = lcvm_gpu_admin_query_argv(c->tool, c->slot, queries, error);
  if (argv == NULL)
    return NULL;
  g_auto(ToolRun) run = { 0 };
  if (!run_tool((const char *const *)argv, timeout_s, &run, error))
    return NULL;
  if (run.timed_out) {
    set_timed_out(error, "the mode query", timeout_s);
    append_to_error(error, "; the device may be hung: see 'dmesg'");
    return NULL;
  }
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(c->slot, run.out, run.err, error);
  if (o == NULL)
    return NULL;
  g_autoptr(LcvmGpuMode) m =
      lcvm_gpu_mode_new(c->slot, c->kind == LCVM_PCI_GPU ? "gpu" : "nvswitch");
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
                "gpu-admin-tools could not read the mode of %s (exit %d): %s", c->slot, run.status,
                quote);
    return NULL;
  }
  m->cc = g_strdup(want_cc ? o->cc : "unsupported");
  m->ppcie = g_strdup(want_ppcie ? o->ppcie : "unsupported");
  return g_steal_pointer(&m);
}

static const char *
mode_of(const LcvmGpuMode *m, LcvmGpuKnob knob)
{
  return knob == LCVM_GPU_KNOB_CC ? m->cc : m->ppcie;
}

/* ---- device checks ---- */

static gboolean
check_not_held(GpuCall *c, GError **error)
{
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(c->config->sysfs_root, error);
  if (inv == NULL)
    return FALSE;
  lcvm_pci_find_holders(inv, c->config->dev_root, c->config->proc_root);
  LcvmPciDevice *d = lcvm_pci_inventory_find(inv, c->slot);
  if (d == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_NOT_FOUND, "%s is gone from the PCI bus", c->slot);
    return FALSE;
  }
  if (d->holders->len == 0)
    return TRUE;
  const LcvmPciHolder *h = d->holders->pdata[0];
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_DEVICE_IN_USE,
              "%s is in use: process %d (%s) holds %s open, and gpu-admin-tools would reset or "
              "write the device under it; stop the VM that uses it first (lium-cvm stop NAME)",
              c->slot, h->pid, h->command, h->path);
  return FALSE;
}

/* Validates the slot against the host, fills kind/arch/model, refuses what the device cannot
 * do and a device held open; with the tool, resolves and trusts it. Worker thread. */
static gboolean
preflight(GpuCall *c, gboolean with_tool, GError **error)
{
  const char *const slots[] = { c->slot, NULL };
  g_auto(GStrv) valid = NULL;
  if (g_str_equal(c->slot, "all")) {
    g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                        "name one PCI slot (DDDD:BB:DD.F): modes are set one device at a time");
    return FALSE;
  }
  valid = helper_vfio_resolve_slots(c->config, slots, error);
  if (valid == NULL)
    return FALSE;
  g_autoptr(LcvmPciInventory) inv = lcvm_pci_inventory_new(c->config->sysfs_root, error);
  if (inv == NULL)
    return FALSE;
  const LcvmPciDevice *d = lcvm_pci_inventory_find(inv, c->slot);
  c->kind = d->kind;
  c->arch = d->arch;
  c->model = g_strdup(d->model);
  if (with_tool && c->arch == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s (%s) has no confidential computing mode: only Hopper and Blackwell GPUs and "
                "their NVSwitches do",
                c->slot, c->model);
    return FALSE;
  }
  if (c->kind == LCVM_PCI_NVSWITCH && c->bus_reset) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is an NVSwitch: NVSwitches are never bus-reset (only the GPUs of a VM are)",
                c->slot);
    return FALSE;
  }
  if (c->kind == LCVM_PCI_NVSWITCH && c->cc != NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is an NVSwitch: it has no CC mode, only PPCIe (send an empty cc)", c->slot);
    return FALSE;
  }
  if (c->kind == LCVM_PCI_GPU && c->ppcie != NULL && g_strcmp0(c->arch, "hopper") != 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s (%s, %s) has no PPCIe mode in gpu-admin-tools (Hopper GPUs only): send an "
                "empty ppcie",
                c->slot, c->model, c->arch);
    return FALSE;
  }
  if (!check_not_held(c, error))
    return FALSE;
  if (with_tool) {
    c->tool = lcvm_gpu_admin_resolve(c->config->gpu_admin_tools, error);
    if (c->tool == NULL)
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
recover(GpuCall *c, GError **error)
{
  guint timeout_ms = (guint)MIN(MAX(c->config->bind_timeout, 1), 3600) * 1000;
  g_autofree char *dir = lcvm_pci_device_dir(c->config->sysfs_root, c->slot);
  g_autofree char *bus = g_build_filename(c->config->sysfs_root, "bus", "pci", NULL);
  step(c, TRUE, "%s reports itself broken: PCIe remove and rescan", c->slot);
  if (!lcvm_sysfs_write(dir, "remove", "1", error))
    return FALSE;
  Presence gone = { dir, FALSE };
  if (!lcvm_sysfs_wait(presence_reached, &gone, timeout_ms)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s did not leave the bus within %u s",
                c->slot, timeout_ms / 1000);
    return FALSE;
  }
  if (!lcvm_sysfs_write(bus, "rescan", "1", error))
    return FALSE;
  Presence back = { dir, TRUE };
  if (!lcvm_sysfs_wait(presence_reached, &back, timeout_ms)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s did not come back after a PCIe rescan within %u s: check 'lspci' and "
                "'dmesg'; the host may need a power cycle",
                c->slot, timeout_ms / 1000);
    return FALSE;
  }
  /* The kernel probed a driver for the new device: gpu-admin-tools needs it without one. */
  return helper_vfio_release(c->config, c->slot, error);
}

/* A query that recovers a broken device once. */
static LcvmGpuMode *
query_recovering(GpuCall *c, GError **error)
{
  g_autoptr(LcvmGpuMode) m = query_once(c, job_timeout(c), error);
  if (m == NULL || !m->broken)
    return g_steal_pointer(&m);
  if (!recover(c, error))
    return NULL;
  g_clear_pointer(&m, lcvm_gpu_mode_free);
  m = query_once(c, job_timeout(c), error);
  if (m != NULL && m->broken) {
    cache_put(c->config, m);
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s is still broken after a PCIe remove and rescan: power-cycle the host", c->slot);
    return NULL;
  }
  return g_steal_pointer(&m);
}

/* ---- SetGpuMode ---- */

/* The tool's set with reset for one knob. After a failure, a device that reports itself
 * broken is recovered and accepted when it then shows the mode asked for. */
static gboolean
set_knob(GpuCall *c, LcvmGpuKnob knob, const char *mode, GError **error)
{
  g_autofree char *name = g_strdup_printf("%s %s", lcvm_gpu_knob_name(knob), mode);
  g_auto(GStrv) argv = lcvm_gpu_admin_set_argv(c->tool, c->slot, knob, mode, error);
  if (argv == NULL)
    return FALSE;
  g_autofree char *args = tool_args((const char *const *)argv);
  step(c, TRUE, "%s on %s: gpu-admin-tools %s", name, c->slot, args);
  g_auto(ToolRun) run = { 0 };
  if (!run_tool((const char *const *)argv, job_timeout(c), &run, error))
    return FALSE;
  if (run.timed_out) {
    set_timed_out(error, name, job_timeout(c));
    append_to_error(error, "; the device may hold a half-written setting: run the same "
                           "'lium-cvm gpu cc' again (see 'dmesg' if it hangs again)");
    return FALSE;
  }
  g_autoptr(LcvmGpuAdminOutput) o = lcvm_gpu_admin_parse(c->slot, run.out, run.err, error);
  if (o == NULL)
    return FALSE;
  if (run.status == 0 && o->reset[knob] && g_strcmp0(o->set[knob], mode) == 0 && !o->broken)
    return TRUE;
  g_autofree char *quote = lcvm_gpu_admin_quote(o);
  if (knob == LCVM_GPU_KNOB_PPCIE && o->ppcie_fw_too_old) {
    if (g_str_equal(mode, "off")) {
      c->no_fw_ppcie = TRUE;
      step(c, FALSE, "%s: the firmware of %s has no PPCIe setting, so PPCIe is off", name, c->slot);
      return TRUE;
    }
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "the firmware of %s is too old for Protected PCIe (gpu-admin-tools: %s): update "
                "the GPU firmware first",
                c->slot, quote);
    return FALSE;
  }
  g_autoptr(GError) query_error = NULL;
  g_autoptr(LcvmGpuMode) now = query_once(c, job_timeout(c), &query_error);
  if (now != NULL && now->broken) {
    g_clear_pointer(&now, lcvm_gpu_mode_free);
    now = query_recovering(c, error);
    if (now == NULL)
      return FALSE;
    if (g_strcmp0(mode_of(now, knob), mode) == 0) {
      step(c, FALSE, "%s: %s recovered and reports %s %s", name, c->slot, lcvm_gpu_knob_name(knob),
           mode);
      return TRUE;
    }
  }
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "gpu-admin-tools failed (exit %d): %s",
              run.status, quote);
  return FALSE;
}

static gboolean
verify(GpuCall *c, GError **error)
{
  step(c, FALSE, "verifying %s", c->slot);
  g_autoptr(LcvmGpuMode) m = query_recovering(c, error);
  if (m == NULL)
    return FALSE;
  cache_put(c->config, m);
  gboolean cc_ok = c->cc == NULL || g_strcmp0(m->cc, c->cc) == 0;
  gboolean ppcie_ok = c->ppcie == NULL || c->no_fw_ppcie || g_strcmp0(m->ppcie, c->ppcie) == 0;
  if (!cc_ok || !ppcie_ok) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s reports CC %s and PPCIe %s after the switch, not what was asked (CC %s, "
                "PPCIe %s): run the same 'lium-cvm gpu cc' again; if it persists see 'dmesg'",
                c->slot, m->cc, m->ppcie, c->cc ? c->cc : "unchanged",
                c->ppcie ? c->ppcie : "unchanged");
    return FALSE;
  }
  c->result = g_strdup_printf("%s: CC %s, PPCIe %s", c->slot, m->cc, m->ppcie);
  step(c, FALSE, "%s", c->result);
  return TRUE;
}

/* Field order (§A.14): towards CC, PPCIe off first; towards PPCIe, CC off first. */
static gboolean
apply_modes(GpuCall *c, GError **error)
{
  gboolean ppcie_first = g_strcmp0(c->ppcie, "on") != 0;
  const char *first = ppcie_first ? c->ppcie : c->cc;
  const char *second = ppcie_first ? c->cc : c->ppcie;
  LcvmGpuKnob k1 = ppcie_first ? LCVM_GPU_KNOB_PPCIE : LCVM_GPU_KNOB_CC;
  LcvmGpuKnob k2 = ppcie_first ? LCVM_GPU_KNOB_CC : LCVM_GPU_KNOB_PPCIE;
  if (first != NULL && !set_knob(c, k1, first, error)) {
    g_prefix_error(error, "step '%s %s' failed: ", lcvm_gpu_knob_name(k1), first);
    return FALSE;
  }
  if (second != NULL && !set_knob(c, k2, second, error)) {
    g_prefix_error(error, "step '%s %s' failed: ", lcvm_gpu_knob_name(k2), second);
    return FALSE;
  }
  if (!verify(c, error)) {
    g_prefix_error(error, "step 'verify' failed: ");
    return FALSE;
  }
  return TRUE;
}

static gboolean
rebind(GpuCall *c, gboolean ok, GError **error)
{
  step(c, TRUE, "binding %s to vfio-pci again", c->slot);
  g_autoptr(GError) local = NULL;
  if (helper_vfio_rebind(c->config, c->slot, &local)) {
    if (!ok)
      append_to_error(error, "; %s is bound to vfio-pci again, as it was", c->slot);
    return ok;
  }
  if (ok) {
    g_propagate_prefixed_error(error, g_steal_pointer(&local),
                               "the mode is set, but binding %s back to vfio-pci failed "
                               "(run 'lium-cvm gpu bind %s'): ",
                               c->slot, c->slot);
    return FALSE;
  }
  append_to_error(error,
                  "; binding %s back to vfio-pci failed too (%s): run 'lium-cvm gpu bind "
                  "%s' once the device is healthy",
                  c->slot, local->message, c->slot);
  return FALSE;
}

gboolean
helper_gpumode_set_job(HelperJob *job, gpointer data, GError **error)
{
  GpuCall *c = data;
  c->job = job;
  if (!check_not_held(c, error))
    return FALSE;
  g_auto(LcvmPciState) st = { 0 };
  lcvm_pci_state_read(c->config->sysfs_root, c->slot, &st);
  gboolean was_bound = g_strcmp0(st.driver, LCVM_VFIO_DRIVER) == 0;
  if (st.driver != NULL && !was_bound) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s is bound to %s, which drives the device's firmware queues itself: bind it "
                "to vfio-pci first (lium-cvm gpu bind %s)",
                c->slot, st.driver, c->slot);
    return FALSE;
  }
  if (st.driver != NULL || st.driver_override != NULL) {
    step(c, TRUE,
         "taking %s off vfio-pci and clearing driver_override (mode changes do "
         "nothing while vfio-pci holds it)",
         c->slot);
    if (!helper_vfio_release(c->config, c->slot, error)) {
      g_prefix_error(error, "step 'release from vfio-pci' failed: ");
      return FALSE;
    }
  }
  gboolean ok = apply_modes(c, error);
  if (was_bound && !rebind(c, ok, error))
    return FALSE;
  if (ok)
    step(c, FALSE, "%s%s", c->result, was_bound ? " (bound to vfio-pci)" : "");
  return ok;
}

/* ---- ResetGpu ---- */

static void
sanitize_step(gpointer data, const char *message)
{
  step(data, TRUE, "%s", message);
}

gboolean
helper_gpumode_reset_job(HelperJob *job, gpointer data, GError **error)
{
  GpuCall *c = data;
  c->job = job;
  if (!check_not_held(c, error))
    return FALSE;
  if (c->bus_reset) {
    const char *const slots[] = { c->slot, NULL };
    if (!helper_sanitize_gpus(c->config, slots, sanitize_step, c, error))
      return FALSE;
  } else {
    g_autofree char *dir = lcvm_pci_device_dir(c->config->sysfs_root, c->slot);
    step(c, TRUE, "resetting %s (sysfs reset: the kernel picks the method)", c->slot);
    if (!lcvm_sysfs_write(dir, "reset", "1", error)) {
      append_to_error(error, " (a device without a usable reset method has no 'reset' file)");
      return FALSE;
    }
  }
  cache_drop(c->config, c->slot);
  step(c, FALSE,
       "%s was reset; a pending CC or PPCIe setting is now active, so its cached mode "
       "was dropped ('lium-cvm lsgpu --query' reads it again)",
       c->slot);
  return TRUE;
}

/* ---- the method table's steps ---- */

/* Every GPU method names its device first. */
static GpuCall *
gpu_call_new(HelperCall *call)
{
  const char *slot = NULL;
  g_variant_get_child(call->args, 0, "&s", &slot);
  GpuCall *c = g_new0(GpuCall, 1);
  c->config = call->daemon->config;
  c->slot = g_strdup(slot);
  c->lock = helper_device_lock_key(slot);
  call->data = c;
  call->destroy = gpu_call_free;
  return c;
}

gboolean
helper_gpumode_query_validate(HelperCall *call, GError **error)
{
  gpu_call_new(call);
  return TRUE;
}

GStrv
helper_gpumode_locks(HelperCall *call)
{
  GpuCall *c = call->data;
  const char *const keys[] = { c->lock, NULL };
  return g_strdupv((char **)keys);
}

static GVariant *
mode_dict(const GpuCall *c, const LcvmGpuMode *m)
{
  GVariantBuilder b;
  g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
  g_variant_builder_add(&b, "{sv}", "slot", g_variant_new_string(m->slot));
  g_variant_builder_add(&b, "{sv}", "kind", g_variant_new_string(m->kind));
  g_variant_builder_add(&b, "{sv}", "model", g_variant_new_string(c->model));
  g_variant_builder_add(&b, "{sv}", "cc", g_variant_new_string(m->cc));
  g_variant_builder_add(&b, "{sv}", "ppcie", g_variant_new_string(m->ppcie));
  g_variant_builder_add(&b, "{sv}", "queried_at", g_variant_new_int64(m->queried_at));
  return g_variant_builder_end(&b);
}

GVariant *
helper_gpumode_query(HelperDaemon *d, gpointer data, GError **error)
{
  GpuCall *c = data;
  guint timeout_s = MIN(job_timeout(c), QUERY_CALL_TIMEOUT_S);
  g_autoptr(LcvmGpuMode) m = preflight(c, TRUE, error) ? query_once(c, timeout_s, error) : NULL;
  if (m == NULL)
    return NULL;
  cache_put(c->config, m);
  if (m->broken) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s reports itself broken (its config space answers, its BARs do "
                "not): 'lium-cvm gpu cc %s --mode …' recovers it by a PCIe remove "
                "and rescan",
                c->slot, c->slot);
    return NULL;
  }
  return g_variant_new("(@a{sv})", mode_dict(c, m));
}

/* SetGpuMode and ResetGpu: the checks run in a worker (they scan /proc for holders) before
 * the device's lock is taken and the job starts. */
gboolean
helper_gpumode_preflight(HelperCall *call, GError **error)
{
  GpuCall *c = call->data;
  return preflight(c, c->setting, error);
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
  GpuCall *c = gpu_call_new(call);
  c->cc = cc[0] ? g_strdup(cc) : NULL;
  c->ppcie = ppcie[0] ? g_strdup(ppcie) : NULL;
  c->setting = TRUE;
  return TRUE;
}

gboolean
helper_gpumode_reset_validate(HelperCall *call, GError **error)
{
  GpuCall *c = gpu_call_new(call);
  c->bus_reset = (call->flags & LCVM_RESET_GPU_BUS) != 0;
  return TRUE;
}
