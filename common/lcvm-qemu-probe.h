/* SPDX-License-Identifier: MIT */
/* What `qemu-system-x86_64 --version` tells us, and the cache that keeps us from asking twice.
 * The version decides guest-visible things (iommufd from 10.0, vm_config's pic and
 * single-pass-add-pages flags), so it is parsed strictly: an output we cannot read is an
 * error, never a guess. Nothing here runs QEMU — the confined spawn lives with the helper;
 * this file only parses its output and remembers it per binary. */
#pragma once
#include <glib.h>
#include <sys/stat.h>

typedef struct {
  guint major;
  guint minor;
  guint patch;
  /* The version word as QEMU printed it, up to a '+' ("9.2.1"): vm_config's qemu_version. */
  char text[32];
  /* Built by a distribution (its --version note names one): which versions and builds
   * validators accept is data (lcvm-known-good), not decided here. */
  gboolean distro_package;
} LcvmQemuVersion;

/* Parses the first line of `--version` output ("QEMU emulator version 9.2.1 (...)"). */
gboolean lcvm_qemu_version_parse(const char *output, LcvmQemuVersion *version, GError **error);

/* TRUE when version >= major.minor.patch. */
gboolean lcvm_qemu_version_at_least(const LcvmQemuVersion *version, guint major, guint minor,
                                    guint patch);

/* A probed version is valid for one file: same path, device, inode, size and mtime. A binary
 * replaced in place (new inode) or rewritten (new size or mtime) is probed again. */
typedef struct _LcvmQemuProbeCache LcvmQemuProbeCache;

LcvmQemuProbeCache *lcvm_qemu_probe_cache_new(void);
void lcvm_qemu_probe_cache_free(LcvmQemuProbeCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmQemuProbeCache, lcvm_qemu_probe_cache_free)

/* The cached version of path when st (from fstat of the opened binary) still matches. */
gboolean lcvm_qemu_probe_cache_lookup(LcvmQemuProbeCache *cache, const char *path,
                                      const struct stat *st, LcvmQemuVersion *version);
void lcvm_qemu_probe_cache_store(LcvmQemuProbeCache *cache, const char *path, const struct stat *st,
                                 const LcvmQemuVersion *version);
