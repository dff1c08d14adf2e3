/* SPDX-License-Identifier: MIT */
/* The key provider's MRENCLAVE: what the gramine-sealing-key-provider container prints about
 * its enclave, and where lium-cvm records it. A data disk's key is sealed to this enclave, so a
 * rebuilt key provider (new MRENCLAVE) can never open the disks of the old one (field-2026
 * §4.6). The parser reads container logs, which it does not trust: it takes only a 64-hex
 * word after an "mr_enclave"/"MRENCLAVE" label and never more than it needs. Pure. */
#pragma once
#include <glib.h>

/* Where it is recorded (lcvm-layout.h): state_dir/LCVM_KEY_PROVIDER_MRENCLAVE_FILE, what the
 * running key provider printed last; state_dir/instances/NAME/LCVM_INSTANCE_MRENCLAVE_FILE,
 * the key provider a VM's data disk was made with (written by the helper at the VM's first
 * start, 0644). */
#include "lcvm-layout.h"

#define LCVM_MRENCLAVE_HEX_LEN 64

/* The last MRENCLAVE in the log text, lower-case, or NULL. Accepted forms (any case, any
 * prefix such as docker compose's "dstack-key-provider  | "):
 *   mr_enclave: <hex>      (gramine-sgx-sigstruct-view, printed at build and at start)
 *   MRENCLAVE: <hex> / MRENCLAVE=<hex> / mrenclave <hex>   */
char *lcvm_mrenclave_from_logs(const char *logs);

/* TRUE for exactly 64 lower-case hex digits (a recorded value). */
gboolean lcvm_mrenclave_valid(const char *text);

/* The recorded value of a record file's bytes ("<hex>\n" or "<hex>"), or NULL otherwise. */
char *lcvm_mrenclave_from_record(const char *bytes, gsize len);

/* The record file beneath dirfd (AT_FDCWD: file is a path), read bounded without following a
 * link, or NULL when it is absent or holds no MRENCLAVE. */
char *lcvm_mrenclave_read_at(int dirfd, const char *file);
