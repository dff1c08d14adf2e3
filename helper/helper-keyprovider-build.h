/* SPDX-License-Identifier: MIT */
/* Host.BuildKeyProvider: builds the key provider images from the root-owned compose directory's
 * docker-compose.build.yaml and pins them, refused while any CVM data disk exists. */
#pragma once
#include "helper-job.h"

/* The Job of BuildKeyProvider (helper-methods.c), under the key provider's lock. */
gboolean helper_keyprovider_build_job(HelperJob *job, gpointer data, GError **error);
