/* SPDX-License-Identifier: MIT */
/* Host.QueryGpuMode, Host.SetGpuMode and Host.ResetGpu: GPU and NVSwitch Confidential
 * Computing / Protected PCIe modes through NVIDIA gpu-admin-tools, and the sysfs reset. */
#pragma once
#include "helper-dispatch.h"

/* The steps of QueryGpuMode, SetGpuMode and ResetGpu, named in the method table
 * (helper-methods.c). Validation keeps a call's device; the lock is that device's. */
gboolean helper_gpumode_query_validate(HelperCall *call, GError **error);
gboolean helper_gpumode_set_validate(HelperCall *call, GError **error);
gboolean helper_gpumode_reset_validate(HelperCall *call, GError **error);
GStrv helper_gpumode_locks(HelperCall *call);
GVariant *helper_gpumode_query(HelperDaemon *d, gpointer data, GError **error);
gboolean helper_gpumode_preflight(HelperCall *call, GError **error);
gboolean helper_gpumode_set_job(HelperJob *job, gpointer data, GError **error);
gboolean helper_gpumode_reset_job(HelperJob *job, gpointer data, GError **error);
