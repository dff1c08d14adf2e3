/* SPDX-License-Identifier: MIT */
/* GPU sanitize before attach (reference/field-2026.md §1): a secondary bus reset of each
 * passed GPU's own upstream bridge, before every VM start and on `gpu reset SLOT --bus`. */
#pragma once
#include <glib.h>

#include "helper-act.h"
#include "lcvm-config.h"
#include "lcvm-qemu-argv.h"

/* Bus-resets every GPU of slots (canonical slots; an NVSwitch is refused), one reset per
 * bridge. Every topology and scope check runs for all of them before the first reset, so a
 * refusal changes nothing; a failed reset stops there with the recovery remedy. The caller
 * makes sure no process holds the GPUs' vfio nodes. Each step (step may be NULL) changes the
 * host, so it is reported as an audit record too. */
gboolean helper_sanitize_gpus(const LcvmConfig *config, const char *const *slots,
                              HelperActStep step, gpointer data, GError **error);

/* The start path's hook: the spec's GPUs (never its NVSwitches) when [gpu] sanitize_on_attach
 * is on; TRUE at once when it is off or there is no GPU. */
gboolean helper_sanitize_before_start(const LcvmConfig *config, const char *name,
                                      const LcvmQemuSpec *spec, GError **error);
