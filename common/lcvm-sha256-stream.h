/* SPDX-License-Identifier: MIT */
/* Streaming SHA-256 through OpenSSL's libcrypto (SHA-NI/AVX2 code paths: image archives are
 * GiBs and the hash runs while they download). Only lium-cvm-download links it. */
#pragma once
#include "lcvm-sha256.h"

typedef struct LcvmSha256 LcvmSha256;

LcvmSha256 *lcvm_sha256_new(void);
void lcvm_sha256_update(LcvmSha256 *sha, const void *data, gsize len);
/* The digest of everything fed so far; the context starts over afterwards. */
char *lcvm_sha256_finish(LcvmSha256 *sha);
void lcvm_sha256_reset(LcvmSha256 *sha);
void lcvm_sha256_free(LcvmSha256 *sha);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LcvmSha256, lcvm_sha256_free)
