/* SPDX-License-Identifier: MIT */
/* GPU CC/PPCIe modes in the frontend: `gpu cc`, `gpu reset`, and the mode columns of `lsgpu`
 * (the helper's cache, or fresh answers with --query). Used by cmd-gpu.c. */
#pragma once
#include "cli.h"
#include "lcvm-pci.h"

int gpu_cc(LcvmCli *cli, int argc, char **argv);
int gpu_reset(LcvmCli *cli, int argc, char **argv);

/* The helper's cache (state_dir/gpu-modes.json); empty (with a note on stderr) when unreadable. */
GHashTable *gpumode_cache_load(LcvmCli *cli);
/* Asks the helper (QueryGpuMode) for each CC-capable device of devices; prints each failure on
 * stderr and returns FALSE when any failed. */
gboolean gpumode_query(LcvmCli *cli, GPtrArray *devices);
/* lsgpu's CC/PPCIE column: "on/off 5m", "-/on 1h" (NVSwitch), "broken 2m", "?" (never asked). */
char *gpumode_cell(GHashTable *modes, const LcvmPciDevice *d, gint64 now);
/* lsgpu --json: member "mode": {cc, ppcie, broken, queried_at, age_s} or null. */
void gpumode_json(JsonBuilder *b, GHashTable *modes, const LcvmPciDevice *d, gint64 now);
/* lsgpu SLOT: one line "\tCC mode: …". */
void gpumode_details(GHashTable *modes, const LcvmPciDevice *d, gint64 now);
