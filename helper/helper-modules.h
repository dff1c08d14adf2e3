/* SPDX-License-Identifier: MIT */
/* Kernel module loading for the allow-listed vfio/vhost modules (libkmod). */
#pragma once
#include "lcvm-config.h"
#include <glib.h>

#define HELPER_MODULES_PERSIST (1u << 0)

/* Validates the request: non-empty, at most a handful of names, each on the allow-list;
 * returns the normalised, de-duplicated names. */
GStrv helper_modules_validate(const char *const *modules, GError **error);
/* Loads each module not already present under sysfs_root/module/. Blocking. */
gboolean helper_modules_load(const LcvmConfig *config, const char *const *modules, GError **error);
/* Adds the modules to modules_load_dir/lium-cvm.conf (atomic replace, keeps earlier ones). */
gboolean helper_modules_persist(const LcvmConfig *config, const char *const *modules,
                                GError **error);
/* Replaces dir/name with text (0644) for the persist flags; creates dir (0755) when a minimal
 * root lacks it, e.g. /etc/modprobe.d without the kmod package. */
gboolean helper_persist_write(const char *dir, const char *name, const char *text, GError **error);
