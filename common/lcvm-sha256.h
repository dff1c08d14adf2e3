/* SHA-256 through OpenSSL's libcrypto (SHA-NI/AVX2 code paths: image archives are GiBs and
 * the hash runs while they download). Digests are always lower-case hex. */
#pragma once
#include <glib.h>

#define LCVM_SHA256_HEX_LEN 64

typedef struct LcvmSha256 LcvmSha256;

LcvmSha256 *lcvm_sha256_new(void);
void lcvm_sha256_update(LcvmSha256 *sha, const void *data, gsize len);
/* The digest of everything fed so far; the context starts over afterwards. */
char *lcvm_sha256_finish(LcvmSha256 *sha);
void lcvm_sha256_reset(LcvmSha256 *sha);
void lcvm_sha256_free(LcvmSha256 *sha);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmSha256, lcvm_sha256_free)

char *lcvm_sha256_data(const void *data, gsize len);
/* Hashes what is left to read from fd; name is for error messages. */
char *lcvm_sha256_fd(int fd, const char *name, GError **error);
/* TRUE for exactly 64 hex digits (either case). */
gboolean lcvm_sha256_is_hex(const char *text);
