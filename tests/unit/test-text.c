/* SPDX-License-Identifier: MIT */
/* lcvm-text: what a guest, QEMU or an operator's file wrote, on its way to an error text, an
 * audit record or a terminal. An escape sequence never arrives whole; bytes that are not UTF-8
 * never arrive raw; an echo is bounded. */
#include "lcvm-text.h"
#include <string.h>

static void
test_plain_text_has_no_controls(void)
{
  static const char *const plain[] = { "", "starting containers", "caf\xc3\xa9 \xe2\x9c\x93" };
  for (guint i = 0; i < G_N_ELEMENTS(plain); i++)
    g_assert_true(lcvm_text_is_plain(plain[i], strlen(plain[i])));
  static const char *const not_plain[] = { "\x1b]0;title\x07",
                                           "a\nb",
                                           "a\tb",
                                           "\x7f",
                                           "\xc2\x9b"
                                           "2J",
                                           "\xff",
                                           "\xed\xb2\x80" };
  for (guint i = 0; i < G_N_ELEMENTS(not_plain); i++)
    g_assert_false(lcvm_text_is_plain(not_plain[i], strlen(not_plain[i])));
  g_assert_false(lcvm_text_is_plain("a\0b", 3));
}

static void
test_a_message_echo_is_escaped_and_bounded(void)
{
  g_autofree char *esc = lcvm_text_for_message("\x1b[2J\xff\xc2\x9b ok\n");
  g_assert_cmpstr(esc, ==, "\\x1b[2J\\xff\\u009b ok\\x0a");
  GString *long_text = g_string_new(NULL);
  for (guint i = 0; i < 100000; i++)
    g_string_append_c(long_text, 'a');
  g_autofree char *cut = lcvm_text_for_message(long_text->str);
  g_assert_cmpuint(strlen(cut), ==, LCVM_TEXT_MAX_ECHO + strlen("…"));
  g_assert_true(g_str_has_suffix(cut, "…"));
  g_string_free(long_text, TRUE);
  /* A cut inside a character: what is kept is still valid UTF-8. */
  g_autofree char *mid = lcvm_text_for_message_max("\xc3\xa9\xc3\xa9", 3);
  g_assert_true(g_utf8_validate(mid, -1, NULL));
  g_assert_cmpstr(mid, ==, "\xc3\xa9\\xc3…");
}

static void
test_a_tty_sees_newlines_and_tabs_but_no_escape(void)
{
  static const char raw[] = "boot\tok\r\n\x1b]52;c;aGk=\x07\x9b\xc2\x9b\x00x";
  GString *out = g_string_new(NULL);
  lcvm_text_append_for_tty(out, raw, sizeof raw - 1);
  g_assert_cmpstr(out->str, ==, "boot\tok\\x0d\n\\x1b]52;c;aGk=\\x07\\x9b\\u009b\\x00x");
  g_assert_null(memchr(out->str, 0x1b, out->len));
  g_string_free(out, TRUE);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/text/plain_text_has_no_controls", test_plain_text_has_no_controls);
  g_test_add_func("/text/a_message_echo_is_escaped_and_bounded",
                  test_a_message_echo_is_escaped_and_bounded);
  g_test_add_func("/text/a_tty_sees_newlines_and_tabs_but_no_escape",
                  test_a_tty_sees_newlines_and_tabs_but_no_escape);
  return g_test_run();
}
