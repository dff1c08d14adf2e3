/* SPDX-License-Identifier: MIT */
/* The frontend's attestation readiness gate: before `new` writes a definition and before `run`
 * starts a VM, the OS image digest and the QEMU version are judged against the known-good list
 * (lcvm-known-good). What validators will reject is a warning on stderr, or — with
 * [attestation] enforce=true — a refusal, saying so in those words. Reads files and runs only
 * the cached `QEMU --version` probe the host check uses. */
#pragma once
#include "cli.h"

/* Judges what a VM would boot: image name and its digest (the manifest's os_image_hash), and
 * the host's QEMU. Warnings go to stderr ("warning: …", or JSON lines with --json). FALSE with
 * error only when enforce is on and something would be rejected. */
gboolean cli_attestation_gate(LcvmCli *cli, const char *image, const char *digest, GError **error);

/* "9.2.1" (the accepted QEMU versions, comma-separated), or why they are unknown. */
char *cli_attestation_qemu_expected(LcvmCli *cli);

/* The gate for `run NAME`: the definition's image and os_image_hash. A definition that cannot
 * be read passes (the helper's start reports that). */
gboolean cli_attestation_gate_vm(LcvmCli *cli, const char *name, GError **error);
