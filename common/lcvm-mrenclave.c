/* SPDX-License-Identifier: MIT */
/* MRENCLAVE from key-provider logs and record files (see the header). */
#include "lcvm-mrenclave.h"
#include "lcvm-compose.h"
#include "lcvm-safe-io.h"

#include <string.h>

gboolean
lcvm_mrenclave_valid(const char *text)
{
  /* An MRENCLAVE is a SHA-256: the same 64 lower-case hex digits as a compose hash. */
  G_STATIC_ASSERT(LCVM_MRENCLAVE_HEX_LEN == 64);
  return lcvm_sha256_hex_valid(text);
}

/* The 64-hex word at p (after separators), lower-cased, or NULL. */
static char *
hex_word_after(const char *p)
{
  p += strspn(p, " \t:=\"'");
  gsize n = 0;
  while (n <= LCVM_MRENCLAVE_HEX_LEN && g_ascii_isxdigit(p[n]))
    n++;
  if (n != LCVM_MRENCLAVE_HEX_LEN || g_ascii_isalnum(p[n]) || p[n] == '_')
    return NULL;
  return g_ascii_strdown(p, LCVM_MRENCLAVE_HEX_LEN);
}

static char *
from_line(const char *line)
{
  static const char *const labels[] = { "mr_enclave", "mrenclave", NULL };
  g_autofree char *lower = g_ascii_strdown(line, -1);
  char *found = NULL;
  for (guint i = 0; labels[i] != NULL; i++) {
    for (const char *p = strstr(lower, labels[i]); p != NULL; p = strstr(p + 1, labels[i])) {
      char *word = hex_word_after(p + strlen(labels[i]));
      if (word != NULL) {
        g_free(found);
        found = word;
      }
    }
  }
  return found;
}

char *
lcvm_mrenclave_from_logs(const char *logs)
{
  char *last = NULL;
  const char *line = logs;
  while (line != NULL && *line != '\0') {
    const char *end = strchr(line, '\n');
    gsize len = end ? (gsize)(end - line) : strlen(line);
    /* Lines longer than a few KiB carry no label we print; skip them unread. */
    if (len <= 4096) {
      g_autofree char *copy = g_strndup(line, len);
      char *word = from_line(copy);
      if (word != NULL) {
        g_free(last);
        last = word;
      }
    }
    line = end ? end + 1 : NULL;
  }
  return last;
}

char *
lcvm_mrenclave_from_record(const char *bytes, gsize len)
{
  if (bytes == NULL || len > LCVM_MRENCLAVE_HEX_LEN + 1)
    return NULL;
  if (len > 0 && bytes[len - 1] == '\n')
    len--;
  g_autofree char *text = g_strndup(bytes, len);
  return lcvm_mrenclave_valid(text) ? g_steal_pointer(&text) : NULL;
}

char *
lcvm_mrenclave_read_at(int dirfd, const char *file)
{
  g_autofree char *bytes = NULL;
  gsize len = 0;
  if (!lcvm_read_file_at(dirfd, file, LCVM_MRENCLAVE_HEX_LEN + 2, &bytes, &len, NULL))
    return NULL;
  return lcvm_mrenclave_from_record(bytes, len);
}
