/* SPDX-License-Identifier: MIT */
/* The key provider's MRENCLAVE as the helper tracks it (lcvm-mrenclave.h): the value the
 * running provider printed (state_dir/key-provider.mrenclave, updated whenever the helper reads
 * its logs), the value each VM's data disk was made with (instances/NAME/key-provider.mrenclave,
 * written at the VM's first start), and the start-time refusal when the two differ: the
 * guest could not open its data disk (it loops on "Failed to open encrypted data disk"). Files
 * are root-owned, 0644, written atomically; nothing is read from an operator-writable place. */
#pragma once
#include "lcvm-config.h"

/* Parses logs; an MRENCLAVE found there is recorded as the current one. Returns the current
 * MRENCLAVE (from the logs, else the last recorded), or NULL when none is known. */
char *helper_mrenclave_observe(const LcvmConfig *config, const char *logs);

/* Before a start of VM name: refused (FAILED, saying why and what to do) when its data disk was
 * made with another MRENCLAVE than the key provider's current one. *had_disk tells whether
 * the VM already has a data disk (helper_mrenclave_record_disk needs it). */
gboolean helper_mrenclave_check(const LcvmConfig *config, const char *name, gboolean *had_disk,
                                GError **error);

/* Of the VMs named in disks (each with a data disk), those whose disk was made under another
 * MRENCLAVE than current, as "NAME (MRENCLAVE)"; empty when current is NULL. */
GPtrArray *helper_mrenclave_mismatched(const LcvmConfig *config, GPtrArray *disks,
                                       const char *current);

/* After the instance is assembled: a data disk made by this start is recorded with the current
 * MRENCLAVE (nothing is recorded when none is known, or for a disk that existed before). */
void helper_mrenclave_record_disk(const LcvmConfig *config, const char *name, gboolean had_disk);
