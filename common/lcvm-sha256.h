/* SPDX-License-Identifier: MIT */
/* SHA-256 of small inputs, with GLib (no libcrypto in the helper or the frontend). Digests
 * are always lower-case hex. Streaming hashes of archives: lcvm-sha256-stream.h. */
#pragma once
#include <glib.h>

#define LCVM_SHA256_HEX_LEN 64

char *lcvm_sha256_data(const void *data, gsize len);
/* Hashes what is left to read from fd; name is for error messages. */
char *lcvm_sha256_fd(int fd, const char *name, GError **error);
/* TRUE for exactly 64 hex digits (either case). */
gboolean lcvm_sha256_is_hex(const char *text);
