/* SPDX-License-Identifier: MIT */
/* Streaming SHA-256 through OpenSSL's libcrypto (SHA-NI/AVX2 code paths: image archives are
 * GiBs and the hash runs while they download). Linked only into lium-cvm-download. */
#include "lcvm-sha256-stream.h"
#include <openssl/evp.h>

struct LcvmSha256 {
  EVP_MD_CTX *ctx;
};

LcvmSha256 *
lcvm_sha256_new(void)
{
  LcvmSha256 *sha = g_new0(LcvmSha256, 1);
  sha->ctx = EVP_MD_CTX_new();
  g_assert(sha->ctx != NULL);
  lcvm_sha256_reset(sha);
  return sha;
}

void
lcvm_sha256_reset(LcvmSha256 *sha)
{
  int ok = EVP_DigestInit_ex(sha->ctx, EVP_sha256(), NULL);
  g_assert(ok == 1);
}

void
lcvm_sha256_update(LcvmSha256 *sha, const void *data, gsize len)
{
  EVP_DigestUpdate(sha->ctx, data, len);
}

char *
lcvm_sha256_finish(LcvmSha256 *sha)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(sha->ctx, md, &len);
  GString *hex = g_string_sized_new(LCVM_SHA256_HEX_LEN);
  for (unsigned int i = 0; i < len; i++)
    g_string_append_printf(hex, "%02x", md[i]);
  lcvm_sha256_reset(sha);
  return g_string_free(hex, FALSE);
}

void
lcvm_sha256_free(LcvmSha256 *sha)
{
  if (sha == NULL)
    return;
  EVP_MD_CTX_free(sha->ctx);
  g_free(sha);
}
