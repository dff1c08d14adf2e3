/* SPDX-License-Identifier: MIT */
/* Where a VM definition departs from what Lium's launcher (lium-cvm.sh + dstack.py) would
 * produce from the same .env, as notes for the operator: a layout Lium never produces
 * (hugepages, NUMA pinning) and .env keys the guest never receives because the measured init
 * script does not read them (field-2026 §6: EXECUTOR_LOCAL_RENT_* in init_script 461934f).
 * Pure: reads the parsed .env, the manifest and the init script's text. */
#pragma once
#include <glib.h>

#include "lcvm-env.h"
#include "lcvm-manifest.h"

/* TRUE when key occurs in text as a whole word (not inside a longer [A-Za-z0-9_] name). */
gboolean lcvm_parity_text_names_key(const char *text, const char *key);

/* The notes, in .env order (char*, owned by the array); empty when the definition is what
 * Lium's launcher makes. init_script NULL: no script measured, no whitelist to compare. */
GPtrArray *lcvm_parity_notes(const LcvmEnv *env, const LcvmManifest *manifest,
                             const char *init_script);
