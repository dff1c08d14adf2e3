/* SPDX-License-Identifier: MIT */
/* The known-good gate of a VM start in the helper (lcvm-known-good): the same judgement
 * `lium-cvm run` makes, so a caller of Manager.StartVm that bypasses the frontend meets it too.
 * What validators will reject is logged (journal) — and refused with [attestation]
 * enforce=true in the helper's own configuration. */
#pragma once
#include "helper-instance.h"

/* FALSE with LCVM_ERROR_FAILED only when enforce is on and validators will reject the VM's OS
 * image or its QEMU (or the known-good list cannot be read). */
gboolean helper_known_good_check(const LcvmConfig *config, const char *name,
                                 const HelperDefinition *def, GError **error);
