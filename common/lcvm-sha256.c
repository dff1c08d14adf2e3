/* SPDX-License-Identifier: MIT */
/* SHA-256 of small inputs (definitions, image metadata, kernels): GLib's implementation, so
 * the helper and the frontend do not load libcrypto. Streaming hashes of GiB archives are
 * lcvm-sha256-stream.c (OpenSSL), linked only into lium-cvm-download. */
#include "lcvm-sha256.h"
#include "lcvm-error.h"
#include <errno.h>
#include <gio/gio.h>
#include <string.h>
#include <unistd.h>

char *
lcvm_sha256_data(const void *data, gsize len)
{
  return g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
}

char *
lcvm_sha256_fd(int fd, const char *name, GError **error)
{
  g_autoptr(GChecksum) sha = g_checksum_new(G_CHECKSUM_SHA256);
  g_autofree char *buf = g_malloc(1024 * 1024);
  for (;;) {
    ssize_t n = read(fd, buf, 1024 * 1024);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      lcvm_set_errno(error, errno, "cannot read %s", name);
      return NULL;
    }
    if (n == 0)
      break;
    g_checksum_update(sha, (const guchar *)buf, n);
  }
  return g_strdup(g_checksum_get_string(sha));
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
