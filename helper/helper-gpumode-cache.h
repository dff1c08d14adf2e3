/* SPDX-License-Identifier: MIT */
/* The GPU mode cache: the last answer of gpu-admin-tools per device, in memory and in
 * state_dir/gpu-modes.json (lcvm-gpu-modes), so `lium-cvm lsgpu` shows modes without waking a
 * device. Thread-safe. */
#pragma once
#include "lcvm-config.h"
#include "lcvm-gpu-modes.h"

void helper_gpumode_cache_put(const LcvmConfig *config, const LcvmGpuMode *m);
void helper_gpumode_cache_drop(const LcvmConfig *config, const char *slot);
