/* SHA-256 helpers (see the header). */
#include "lcvm-sha256.h"
#include <errno.h>
#include <gio/gio.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

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

char *
lcvm_sha256_data(const void *data, gsize len)
{
  g_autoptr(LcvmSha256) sha = lcvm_sha256_new();
  lcvm_sha256_update(sha, data, len);
  return lcvm_sha256_finish(sha);
}

char *
lcvm_sha256_fd(int fd, const char *name, GError **error)
{
  g_autoptr(LcvmSha256) sha = lcvm_sha256_new();
  g_autofree char *buf = g_malloc(1024 * 1024);
  for (;;) {
    ssize_t n = read(fd, buf, 1024 * 1024);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      g_set_error(error, G_IO_ERROR, g_io_error_from_errno(err), "cannot read %s: %s", name,
                  g_strerror(err));
      return NULL;
    }
    if (n == 0)
      break;
    lcvm_sha256_update(sha, buf, (gsize)n);
  }
  return lcvm_sha256_finish(sha);
}

gboolean
lcvm_sha256_is_hex(const char *text)
{
  if (text == NULL || strlen(text) != LCVM_SHA256_HEX_LEN)
    return FALSE;
  for (const char *p = text; *p; p++)
    if (!g_ascii_isxdigit(*p))
      return FALSE;
  return TRUE;
}
