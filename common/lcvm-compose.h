/* SPDX-License-Identifier: MIT */
/* app-compose.json: the measured application manifest. Its sha256 is the compose hash the
 * Lium validator whitelists, so the bytes must be exactly what lium-cvm.sh + dstack.py write
 * for the same inputs: the key order of reference/lium.md §2.2, Python's json.dump(indent=4)
 * format (lcvm-pyjson), and the text as Python reads it (strict UTF-8, universal newlines:
 * CRLF and lone CR become LF). Nothing here reads files or knows about directories. */
#pragma once
#include <glib.h>

#define LCVM_RUNNER_DIGEST_KEY "EXECUTOR_RUNNER_IMAGE_DIGEST"

typedef struct {
  const char *compose;           /* compose file text (already decoded and digest-stamped) */
  const char *init_script;       /* script text, NULL when no script is given */
  const char *pre_launch_script; /* script text, NULL when no script is given */
  gboolean enable_logs;          /* public_logs */
  gboolean enable_sysinfo;       /* public_sysinfo + public_tcbinfo */
} LcvmComposeInput;

/* Decodes file bytes the way Python's open(path).read() does on a UTF-8 host: invalid
 * UTF-8 is an error (what names the file), line ends are normalised to LF. A NUL byte is
 * refused (no compose file or script holds one). */
char *lcvm_compose_decode_text(const char *what, const char *data, gsize len, GError **error);

/* TRUE when text contains the literal ${EXECUTOR_RUNNER_IMAGE_DIGEST}, which makes the digest
 * required (lium-cvm.sh's test). */
gboolean lcvm_compose_needs_runner_digest(const char *text);

/* `envsubst '${EXECUTOR_RUNNER_IMAGE_DIGEST}'`: replaces ${EXECUTOR_RUNNER_IMAGE_DIGEST} and
 * $EXECUTOR_RUNNER_IMAGE_DIGEST (not followed by a name character) with digest, which must be
 * sha256: + 64 lower-case hex digits. digest NULL is the "not set" error. */
char *lcvm_compose_stamp_runner_digest(const char *text, const char *digest, GError **error);

/* The app-compose.json bytes (no trailing newline). */
char *lcvm_compose_build(const LcvmComposeInput *input, gsize *len, GError **error);

/* sha256 of the bytes, 64 lower-case hex. */
char *lcvm_compose_hash(const char *data, gsize len);

/* TRUE for exactly 64 lower-case hex digits. */
gboolean lcvm_sha256_hex_valid(const char *text);
