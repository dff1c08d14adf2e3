/* SPDX-License-Identifier: MIT */
/* Host.BuildKeyProvider: builds the key provider images from the root-owned compose directory's
 * docker-compose.build.yaml and pins them, refused while any CVM data disk exists. */
#pragma once
#include "helper-act.h"
#include "lcvm-config.h"

/* The build act (blocks for as long as docker builds: worker threads only); docker's output
 * lines come as steps. Its Job is helper_keyprovider_build_job (helper-keyprovider.h). */
gboolean helper_keyprovider_build(const LcvmConfig *config, HelperActStep step, gpointer step_data,
                                  GError **error);
