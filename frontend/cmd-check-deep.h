/* SPDX-License-Identifier: MIT */
/* `lium-cvm check --deep`: the checks that ask the helper (the local ones are lcvm-hostcheck's,
 * which never talk to anyone). Used by cmd-check.c. */
#pragma once
#include "cli.h"
#include "lcvm-hostcheck.h"

/* Before the local checks run: asks the helper (QueryGpuMode, which caches the answer) for
 * each CC-capable GPU whose mode is not cached yet, so the local gpu.SLOT.cc_mode checks see
 * it. Returns the failures as "SLOT\tmessage" (for cli_check_deep). */
GPtrArray *cli_check_query_gpu_modes(LcvmCli *cli);

/* Adds the deep checks to report: keyprovider.status (KeyProviderStatus), nftables.guard (the
 * helper's nftables capability) and one gpu.SLOT.cc_mode_query per failed query. */
void cli_check_deep(LcvmCli *cli, LcvmCheckReport *report, GPtrArray *query_failures);
