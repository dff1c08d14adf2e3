/* SPDX-License-Identifier: MIT */
/* Which QEMU the helper runs and what version it is. The binary comes from [qemu] path, else
 * the [qemu] path of dstack's client.conf (itself trusted only when root-owned), else PATH;
 * it must be trusted (root-owned, not group/other-writable along its whole path). Its version
 * is probed once per binary (path, inode, size, mtime) by running `--version` confined as
 * nobody under the QEMU seccomp profile — never as root. */
#pragma once
#include "lcvm-config.h"
#include "lcvm-qemu-probe.h"

/* Thread-safe. *path receives the resolved, trusted binary. */
gboolean helper_qemu_resolve(const LcvmConfig *config, char **path, LcvmQemuVersion *version,
                             GError **error);
