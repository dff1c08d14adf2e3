/* SPDX-License-Identifier: MIT */
/* Whether root may trust a file it runs or reads as configuration (DESIGN §5): QEMU,
 * qemu-img, gpu-admin-tools, docker, the key provider's compose directory,
 * /etc/dstack/client.conf. Only root may be able to change what such a path names. */
#pragma once
#include <glib.h>

/* Resolves path (symlinks included) and checks the result and every directory above it: each
 * must be owned by root and not writable by group or others (a root-owned directory with the
 * sticky bit, like /tmp, is allowed: nobody else can replace a root-owned entry in it). Returns
 * the resolved path, which is what the caller must use from then on; NULL with
 * LCVM_ERROR_NOT_FOUND when it does not resolve, LCVM_ERROR_FAILED naming the component and
 * the fix when it is not trusted. */
char *lcvm_trusted_path(const char *path, GError **error);
