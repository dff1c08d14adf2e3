/* SPDX-License-Identifier: MIT */
/* Making text from elsewhere safe to show (see the header). */
#include "lcvm-text.h"

static gboolean
is_control(gunichar c)
{
  return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0);
}

gboolean
lcvm_text_is_plain(const char *text, gsize len)
{
  const char *end = NULL;
  if (!g_utf8_validate_len(text, len, &end))
    return FALSE;
  for (const char *p = text; p < text + len; p = g_utf8_next_char(p))
    if (is_control(g_utf8_get_char(p)))
      return FALSE;
  return TRUE;
}

/* Appends len bytes, escaping what is not valid UTF-8 and controls (except those keep allows). */
static void
append_escaped(GString *out, const char *text, gsize len, gboolean keep_newline_tab)
{
  const char *p = text, *end = text + len;
  while (p < end) {
    gunichar c = g_utf8_get_char_validated(p, end - p);
    if (c == (gunichar)-1 || c == (gunichar)-2) {
      g_string_append_printf(out, "\\x%02x", (guchar)*p);
      p++;
      continue;
    }
    const char *next = g_utf8_next_char(p);
    if (is_control(c) && !(keep_newline_tab && (c == '\n' || c == '\t')))
      g_string_append_printf(out, c < 0x80 ? "\\x%02x" : "\\u%04x", c);
    else
      g_string_append_len(out, p, next - p);
    p = next;
  }
}

char *
lcvm_text_for_message_max(const char *text, gsize max)
{
  if (max == 0)
    max = LCVM_TEXT_MAX_ECHO;
  gsize len = strlen(text);
  gboolean cut = len > max;
  GString *out = g_string_new(NULL);
  append_escaped(out, text, cut ? max : len, FALSE);
  /* A cut inside a character leaves its head as \xNN: the reader sees where it was cut. */
  if (cut)
    g_string_append(out, "…");
  return g_string_free(out, FALSE);
}

char *
lcvm_text_for_message(const char *text)
{
  return lcvm_text_for_message_max(text, 0);
}

char *
lcvm_text_cut(const char *text, gsize max)
{
  gsize len = strlen(text);
  g_autofree char *valid = g_utf8_make_valid(text, MIN(len, max));
  if (len <= max)
    return g_steal_pointer(&valid);
  /* The cut may have split the last character: make_valid turned its head into U+FFFD. */
  return g_strconcat(valid, "…", NULL);
}

void
lcvm_text_append_for_tty(GString *out, const char *bytes, gssize len)
{
  append_escaped(out, bytes, len < 0 ? strlen(bytes) : (gsize)len, TRUE);
}
