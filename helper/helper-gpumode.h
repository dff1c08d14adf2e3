/* SPDX-License-Identifier: MIT */
/* Host.QueryGpuMode, Host.SetGpuMode and Host.ResetGpu: GPU and NVSwitch Confidential
 * Computing / Protected PCIe modes through NVIDIA gpu-admin-tools, and the sysfs reset. The
 * acts (check, query, set, reset) take a request and a step callback and never see the bus
 * (helper-gpumode.c); the method table's steps turn a call into a request
 * (helper-gpumode-methods.c). */
#pragma once
#include "helper-act.h"
#include "helper-dispatch.h"
#include "lcvm-config.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-pci.h"

/* One device's mode change, reset or query. */
typedef struct {
  const LcvmConfig *config;
  char *slot;
  char *cc;           /* set: NULL leaves the CC mode alone */
  char *ppcie;        /* set: NULL leaves the PPCIe mode alone */
  gboolean bus_reset; /* reset: a secondary bus reset of the VM's kind, not the sysfs reset */
  /* Filled by helper_gpumode_check: */
  LcvmPciKind kind;
  const char *arch; /* lcvm-pci's static string */
  char *model;
  char *tool; /* resolved, trusted; NULL without the tool */
  /* While an act runs: */
  HelperActStep step;
  gpointer step_data;
  gboolean no_fw_ppcie; /* the firmware has no PPCIe setting */
  char *result;         /* "SLOT: CC on, PPCIe off" once a set is verified */
} HelperGpuRequest;

HelperGpuRequest *helper_gpumode_request_new(const LcvmConfig *config, const char *slot);
void helper_gpumode_request_free(HelperGpuRequest *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperGpuRequest, helper_gpumode_request_free)

/* Validates the slot against the host, fills kind/arch/model, refuses what the device cannot
 * do (with r->cc, r->ppcie, r->bus_reset) and a device held open; with_tool, resolves and
 * trusts gpu-admin-tools. Scans /proc: worker threads only. */
gboolean helper_gpumode_check(HelperGpuRequest *r, gboolean with_tool, GError **error);

/* The acts; each blocks (worker threads only). query checks first, runs the tool once within
 * timeout_s and caches the answer; a device that reports itself broken is an error. set
 * (after helper_gpumode_check with the tool) takes the device off vfio-pci, sets r->cc and
 * r->ppcie, verifies, and binds it back where it was. reset (after helper_gpumode_check)
 * resets the device and drops its cached mode. step may be NULL. */
LcvmGpuMode *helper_gpumode_query(HelperGpuRequest *r, guint timeout_s, GError **error);
gboolean helper_gpumode_set(HelperGpuRequest *r, HelperActStep step, gpointer step_data,
                            GError **error);
gboolean helper_gpumode_reset(HelperGpuRequest *r, HelperActStep step, gpointer step_data,
                              GError **error);
/* [tools] gpu_admin_tools_timeout, bounded to 1..3600 s. */
guint helper_gpumode_tool_timeout(const LcvmConfig *config);

/* The steps of QueryGpuMode, SetGpuMode and ResetGpu, named in the method table
 * (helper-methods.c; helper-gpumode-methods.c). Validation keeps a call's request; the lock is
 * that device's. */
gboolean helper_gpumode_query_validate(HelperCall *call, GError **error);
gboolean helper_gpumode_set_validate(HelperCall *call, GError **error);
gboolean helper_gpumode_reset_validate(HelperCall *call, GError **error);
GStrv helper_gpumode_locks(HelperCall *call);
GVariant *helper_gpumode_query_call(HelperDaemon *d, gpointer data, GError **error);
gboolean helper_gpumode_preflight(HelperCall *call, GError **error);
gboolean helper_gpumode_set_job(HelperJob *job, gpointer data, GError **error);
gboolean helper_gpumode_reset_job(HelperJob *job, gpointer data, GError **error);
