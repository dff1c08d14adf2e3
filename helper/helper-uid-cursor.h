/* SPDX-License-Identifier: MIT */
/* Where the round-robin uid cursor of the reservation table (helper-alloc.h) survives a helper
 * restart: state_dir/uid-cursor (root's), one decimal uid. A missing or unreadable file starts
 * the round at uid_range's first uid. */
#pragma once
#include "helper-alloc.h"
#include "lcvm-config.h"

void helper_uid_cursor_load(const LcvmConfig *config, HelperAlloc *alloc);
/* After each reservation; a failure is logged (the next restart then starts the round anew). */
void helper_uid_cursor_save(const LcvmConfig *config, HelperAlloc *alloc);
