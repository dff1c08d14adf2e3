/* SPDX-License-Identifier: MIT */
/* common/lcvm-text.c, the last step before a terminal, an error text or an audit record: for
 * any bytes the results are valid UTF-8, bounded, and hold no control character where they
 * promise none. */
#include "fuzz.h"
#include "lcvm-text.h"

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autofree char *text = fuzz_text(data, size);
  lcvm_text_is_plain((const char *)data, size);
  g_autofree char *message = lcvm_text_for_message(text);
  g_assert(lcvm_text_is_plain(message, strlen(message)));
  g_assert(strlen(message) <= 4 * LCVM_TEXT_MAX_ECHO + 8);
  g_autofree char *cut = lcvm_text_cut(text, 64);
  g_assert(g_utf8_validate(cut, -1, NULL) && strlen(cut) <= 3 * 64 + 8);
  g_autoptr(GString) tty = g_string_new(NULL);
  lcvm_text_append_for_tty(tty, (const char *)data, (gssize)size);
  g_assert(g_utf8_validate(tty->str, (gssize)tty->len, NULL));
  for (gsize i = 0; i < tty->len; i++)
    g_assert(tty->str[i] == '\n' || tty->str[i] == '\t' || (guchar)tty->str[i] >= 0x20);
  g_assert(strchr(tty->str, 0x7f) == NULL && strstr(tty->str, "\xc2\x9b") == NULL);
  return 0;
}
