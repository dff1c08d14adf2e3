/* SPDX-License-Identifier: MIT */
/* The frontend's typed client of the helper (io.lium.Cvm1): one C function per D-Bus method,
 * taking and returning C values. Each method's signature is written once, in the method table
 * of cli-client.c (checked against dbus/io.lium.Cvm1.xml by tests/unit/test-client.c). Three
 * shapes underneath:
 *   call             — the method, with the password agent started and the call retried once
 *                      when polkit needs interactive authorization; errors arrive stripped of
 *                      the D-Bus prefix, with a hint when the helper is not there;
 *   call and follow  — a method answering a Job path (/io/lium/Cvm1/jobs/N), followed until
 *                      it finishes, each step printed (JSON lines on stderr with --json);
 *                      FALSE with the Job's result as the message when it failed;
 *   properties       — every property of a VM or Job object (a{sv}).
 * Every function returns NULL/FALSE and sets error on failure. */
#pragma once
#include "cli.h"

/* ---- io.lium.Cvm1.Host ---- */

/* Version, configuration summary, capabilities, methods (a{sv}). */
GVariant *cli_host_get_info(LcvmCli *cli, GError **error);
/* persist: also in modules-load.d. */
gboolean cli_host_load_modules(LcvmCli *cli, const char *const *modules, gboolean persist,
                               GError **error);
/* persist: also in modprobe.d. */
gboolean cli_host_set_dma_entry_limit(LcvmCli *cli, guint64 limit, gboolean persist,
                                      GError **error);
/* Jobs, followed. slots: DDDD:BB:DD.F or the single word "all". */
gboolean cli_host_bind_vfio(LcvmCli *cli, const char *const *slots, GError **error);
gboolean cli_host_unbind_vfio(LcvmCli *cli, const char *const *slots, GError **error);
/* The device's CC and PPCIe modes (a{sv}). */
GVariant *cli_host_query_gpu_mode(LcvmCli *cli, const char *slot, GError **error);
/* A Job, followed. cc, ppcie: "" leaves the mode. */
gboolean cli_host_set_gpu_mode(LcvmCli *cli, const char *slot, const char *cc, const char *ppcie,
                               GError **error);
/* A Job, followed. flags: LCVM_RESET_GPU_BUS or 0. */
gboolean cli_host_reset_gpu(LcvmCli *cli, const char *slot, guint64 flags, GError **error);
/* The key provider's state (a{sv}). */
GVariant *cli_host_key_provider_status(LcvmCli *cli, GError **error);
/* Jobs, followed. */
gboolean cli_host_start_key_provider(LcvmCli *cli, GError **error);
gboolean cli_host_build_key_provider(LcvmCli *cli, GError **error);
gboolean cli_host_stop_key_provider(LcvmCli *cli, GError **error);
/* The containers' last lines of log. */
char *cli_host_key_provider_logs(LcvmCli *cli, guint32 lines, GError **error);

/* ---- io.lium.Cvm1.Manager ---- */

/* The argv StartVm would run, and every refusal (a(ss): error name, message). */
gboolean cli_manager_dry_run(LcvmCli *cli, const char *name, GStrv *argv, GVariant **refusals,
                             GError **error);
/* The VM object's path (answers once QEMU runs; not a Job). */
char *cli_manager_start_vm(LcvmCli *cli, const char *name, GError **error);
/* A Job, followed. timeout_s: 0 for the default; flags: LCVM_STOP_FORCE or 0. */
gboolean cli_manager_stop_vm(LcvmCli *cli, const char *name, guint32 timeout_s, guint64 flags,
                             GError **error);
gboolean cli_manager_remove_vm(LcvmCli *cli, const char *name, GError **error);
/* The VM object paths the helper knows. */
GStrv cli_manager_list_vms(LcvmCli *cli, GError **error);

/* ---- objects ---- */

/* Every property of interface iface on object path (a{sv}); no authorization is involved. */
GVariant *cli_properties(LcvmCli *cli, const char *path, const char *iface, GError **error);
/* Calls func with each change (a{sv}) of iface's properties on path, from the main loop, until
 * cli_properties_unwatch. Watch first, then read: no change is lost in between. */
typedef void (*CliPropertiesChanged)(GVariant *changed, gpointer data);
guint cli_properties_watch(LcvmCli *cli, const char *path, const char *iface,
                           CliPropertiesChanged func, gpointer data);
void cli_properties_unwatch(LcvmCli *cli, guint watch);

/* ---- the layer itself ---- */

/* One row of the method table: interface, method, and the GVariant formats of its arguments
 * and its reply (g_variant_new / g_variant_get formats; without '^', '&' and '@' they are the
 * D-Bus signatures). */
typedef struct {
  const char *iface;
  const char *name;
  const char *in;
  const char *out;
} CliMethod;

/* The table, ended by a row of NULLs (for the unit test). */
const CliMethod *cli_client_methods(void);
/* The D-Bus type a table format stands for: "(^as@a(ss))" → "(asa(ss))". */
char *cli_client_format_type(const char *format);

/* Follows the Job at path until it finishes (cli-job.c). */
gboolean cli_follow_job(LcvmCli *cli, const char *path, GError **error);
