/* SPDX-License-Identifier: MIT */
/* The host readiness check: a list of checks, each with a stable dotted id, a status, what
 * was observed, what was expected and a remedy that says exactly what to do. Every file is
 * read through the configured roots (sysfs_root, proc_root, dev_root, state_dir), so tests
 * run it against fake hosts. Nothing here changes the host or asks the helper anything. */
#pragma once
#include "lcvm-config.h"
#include <glib.h>
#include <json-glib/json-glib.h>

typedef enum {
  LCVM_CHECK_OK,
  LCVM_CHECK_WARN,
  LCVM_CHECK_FAIL,
  LCVM_CHECK_UNKNOWN, /* could not be determined (no permission, file absent …) */
  LCVM_CHECK_SKIP,    /* does not apply here */
} LcvmCheckStatus;

/* A fix the helper can apply (`check --fix`). */
typedef enum {
  LCVM_FIX_NONE,
  LCVM_FIX_LOAD_VFIO_MODULES, /* Host.LoadModules */
  LCVM_FIX_DMA_ENTRY_LIMIT,   /* Host.SetDmaEntryLimit */
} LcvmCheckFix;

typedef struct {
  char *id;    /* "cpu.tdx_host_platform", "gpu.0000:19:00.0.driver" */
  char *title; /* short human title */
  LcvmCheckStatus status;
  char *observed;
  char *expected;
  char *remedy; /* NULL when ok or skip */
  LcvmCheckFix fix;
} LcvmCheck;

typedef struct {
  GPtrArray *checks; /* LcvmCheck*, in report order */
} LcvmCheckReport;

typedef struct {
  const char *cache_dir;    /* where the `qemu --version` answer is cached; NULL: no cache */
  guint connect_timeout_ms; /* key provider TCP connect */
} LcvmHostcheckOptions;

/* Runs every local check. Returns NULL with error only when the check cannot run at all
 * (proc_root or sysfs_root missing). */
LcvmCheckReport *lcvm_hostcheck_run(const LcvmConfig *config, const LcvmHostcheckOptions *options,
                                    GError **error);

/* The first line of `QEMU --version` for the QEMU VMs run ([qemu] path, else client.conf, else
 * PATH), cached in cache_dir (NULL: no cache) as the check caches it; *path gets the binary. */
char *lcvm_hostcheck_qemu_version_line(const LcvmConfig *config, const char *cache_dir, char **path,
                                       GError **error);

/* Intel's QCNL config text (JSON with // comments): its pccs_url and use_secure_cert (QCNL's
 * default true when absent; *secure_given says whether the file sets it). path names the
 * file in errors. */
gboolean lcvm_qcnl_parse(const char *text, const char *path, char **pccs_url, gboolean *secure,
                         gboolean *secure_given, GError **error);

/* For the deep checks, which the frontend runs (they ask the helper): adds a check to report,
 * status unknown until set. */
LcvmCheck *lcvm_check_report_add(LcvmCheckReport *report, const char *id, const char *title,
                                 const char *expected);
void lcvm_check_set(LcvmCheck *c, LcvmCheckStatus status, const char *observed_fmt, ...)
    G_GNUC_PRINTF(3, 4);
void lcvm_check_set_remedy(LcvmCheck *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

const char *lcvm_check_status_name(LcvmCheckStatus status);
guint lcvm_check_report_count(const LcvmCheckReport *report, LcvmCheckStatus status);
/* Ready = no check failed. */
gboolean lcvm_check_report_ready(const LcvmCheckReport *report);
/* The JSON document described by data/check-report.schema.json. */
JsonNode *lcvm_check_report_to_json(const LcvmCheckReport *report, gboolean deep_requested);

void lcvm_check_report_free(LcvmCheckReport *report);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmCheckReport, lcvm_check_report_free)
