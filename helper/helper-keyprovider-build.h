/* SPDX-License-Identifier: MIT */
/* Host.BuildKeyProvider: builds the key provider images from the root-owned compose directory's
 * docker-compose.build.yaml and pins them, refused while any CVM data disk exists. */
#pragma once
#include "helper-daemon.h"

/* Connects the handler to d->host (called by helper_keyprovider_connect). */
void helper_keyprovider_build_connect(HelperDaemon *d);
