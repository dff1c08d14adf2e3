/* SPDX-License-Identifier: MIT */
/* The one sysfs layer: read an attribute, write an attribute, read a link's target name and
 * wait for the kernel to show the effect of a write. Every path is built by the caller from a
 * configured root and fixed attribute names; nothing here follows a symlink in the last
 * component, and a write never creates a file (sysfs attributes exist or the write fails). */
#pragma once
#include <glib.h>

/* Attributes are small; anything bigger is not one. */
#define LCVM_SYSFS_ATTR_MAX 4096

/* dir/name with the trailing newline removed. G_IO_ERROR_NOT_FOUND when it is absent. */
char *lcvm_sysfs_read(const char *dir, const char *name, GError **error);
/* The same, as a number (decimal or 0x-prefixed hex); FALSE when absent or not a number. */
gboolean lcvm_sysfs_read_uint(const char *dir, const char *name, guint64 *out, GError **error);

/* Writes value to the existing attribute dir/name in one write(2), as `echo` would, and
 * reports the kernel's refusal (the errno of the write) with the attribute's path. */
gboolean lcvm_sysfs_write(const char *dir, const char *name, const char *value, GError **error);

/* The last path component of the symlink dir/name (a device's `driver` → "vfio-pci"), or
 * NULL when there is no such link. */
char *lcvm_sysfs_link_name(const char *dir, const char *name);

/* Names in dir (no "." entries), sorted; an empty vector when dir is absent. */
GStrv lcvm_sysfs_list(const char *dir);

/* Polls until cond(data) holds or timeout_ms passes: the kernel (and a driver's probe) may
 * act after the write returned, so callers wait for the effect instead of assuming it.
 * Returns whether the condition held. */
typedef gboolean (*LcvmSysfsCondition)(gpointer data);
gboolean lcvm_sysfs_wait(LcvmSysfsCondition cond, gpointer data, guint timeout_ms);
