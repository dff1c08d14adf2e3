/* SPDX-License-Identifier: MIT */
/* From a validated definition, its OS image and the helper's config to the argv builder's
 * spec. This is the only place that knows both models and the builder; it reads sysfs (NUMA
 * nodes, a node's cpulist) and dev_root (is there a vhost-vsock device), and never writes.
 * Every path it produces is built from configured roots and validated names, never taken
 * from a definition. */
#pragma once
#include <glib.h>

#include "lcvm-config.h"
#include "lcvm-image.h"
#include "lcvm-manifest.h"
#include "lcvm-qemu-argv.h"

/* What the host decided for this run: the trusted QEMU binary, its probed version and the
 * vsock CID reserved for the guest (dropped for a no-TEE guest when dev_root has no
 * vhost-vsock device). */
typedef struct {
  const char *qemu_path;
  LcvmQemuVersion qemu_version;
  guint vsock_cid;
} LcvmQemuHost;

/* A spec that owns the paths and arrays it built; it borrows the rest (cmdline, slots,
 * addresses, configured paths) from manifest, image and config, so free it before them. */
LcvmQemuSpec *lcvm_qemu_spec_from(const LcvmManifest *manifest, const LcvmImage *image,
                                  const LcvmConfig *config, const LcvmQemuHost *host,
                                  GError **error);
void lcvm_qemu_spec_free(LcvmQemuSpec *spec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmQemuSpec, lcvm_qemu_spec_free)
