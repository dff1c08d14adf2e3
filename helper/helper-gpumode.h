/* SPDX-License-Identifier: MIT */
/* Host.QueryGpuMode, Host.SetGpuMode and Host.ResetGpu: GPU and NVSwitch Confidential
 * Computing / Protected PCIe modes through NVIDIA gpu-admin-tools, and the sysfs reset. */
#pragma once
#include "helper-daemon.h"

/* Connects the three handlers to d->host (called by helper_host_export). */
void helper_gpumode_connect(HelperDaemon *d);
