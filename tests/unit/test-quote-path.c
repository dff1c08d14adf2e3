/* SPDX-License-Identifier: MIT */
/* Parsers of the quote path's evidence: qgsd's journal (its known failure codes), Intel's
 * registration tool, an HTTP status line — each also with hostile or malformed input. */
#include "lcvm-quote-path.h"

#include <string.h>

static void
known_codes_are_found_with_their_remedy(void)
{
  LcvmQgsdJournal j;
  lcvm_qgsd_journal_scan("x systemd[1]: Started qgsd.service\n"
                         "x qgsd[1]: [QPL] Failed to get quote config. Error code is 0xB011\n",
                         &j);
  g_assert_cmpuint(j.lines, ==, 2);
  g_assert_nonnull(j.failure);
  g_assert_cmpstr(j.failure->code, ==, "0xb011");
  g_assert_nonnull(strstr(j.failure->remedy, "daily"));
  g_assert_false(j.restarted_after);
  g_assert_nonnull(strstr(j.failure_line, "0xB011"));
  lcvm_qgsd_journal_clear(&j);
  lcvm_qgsd_journal_scan("[QPL] 0xb010\n", &j);
  g_assert_cmpstr(j.failure->code, ==, "0xb010");
  lcvm_qgsd_journal_clear(&j);
}

static void
the_last_failure_counts_and_a_restart_after_it_is_seen(void)
{
  LcvmQgsdJournal j;
  lcvm_qgsd_journal_scan("0xb033\nStarted qgsd\n0xb011\n", &j);
  g_assert_cmpstr(j.failure->code, ==, "0xb011");
  g_assert_false(j.restarted_after);
  lcvm_qgsd_journal_clear(&j);
  lcvm_qgsd_journal_scan("0xb011\nStarted qgsd\n", &j);
  g_assert_true(j.restarted_after);
  lcvm_qgsd_journal_clear(&j);
  lcvm_qgsd_journal_scan("Started qgsd\nall good\n", &j);
  g_assert_null(j.failure);
  g_assert_false(j.restarted_after);
  lcvm_qgsd_journal_clear(&j);
}

static void
codes_inside_other_numbers_or_words_do_not_count(void)
{
  const char *cases[] = { "0xb0110",        "0xb011f", "10xb011", "a0xb011", "0xb01",
                          "0xe044 0x11001", "",        "\n\n\n",  "xb011",   "0xb011x" };
  for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
    LcvmQgsdJournal j;
    lcvm_qgsd_journal_scan(cases[i], &j);
    if (j.failure != NULL)
      g_error("case %" G_GSIZE_FORMAT " '%s' gave %s", i, cases[i], j.failure->code);
    lcvm_qgsd_journal_clear(&j);
  }
  LcvmQgsdJournal j;
  lcvm_qgsd_journal_scan(NULL, &j);
  g_assert_cmpuint(j.lines, ==, 0);
}

static void
hostile_lines_are_cut_and_made_valid(void)
{
  g_autoptr(GString) big = g_string_new("\xff\xfe invalid utf-8 then 0xb011 ");
  for (int i = 0; i < 10000; i++)
    g_string_append(big, "\xc3\xa9");
  LcvmQgsdJournal j;
  lcvm_qgsd_journal_scan(big->str, &j);
  g_assert_nonnull(j.failure);
  g_assert_true(g_utf8_validate(j.failure_line, -1, NULL));
  g_assert_cmpuint(g_utf8_strlen(j.failure_line, -1), <=, 300);
  lcvm_qgsd_journal_clear(&j);
}

static void
registration_status(void)
{
  g_autofree char *ok = NULL;
  g_assert_true(lcvm_mpa_registration_complete(
      "Intel(R) Multi-Package Registration Agent\nRegistration status: completed successfully\n",
      &ok));
  g_assert_cmpstr(ok, ==, "Registration status: completed successfully");
  g_autofree char *no = NULL;
  g_assert_false(lcvm_mpa_registration_complete("Registration status: in progress\n\n", &no));
  g_assert_cmpstr(no, ==, "Registration status: in progress");
  g_autofree char *none = NULL;
  g_assert_false(lcvm_mpa_registration_complete(NULL, &none));
  g_assert_cmpstr(none, ==, "(no output)");
}

static void
http_status_lines(void)
{
  g_assert_cmpuint(lcvm_http_status("HTTP/1.1 200 OK\r\n"), ==, 200);
  g_assert_cmpuint(lcvm_http_status("HTTP/1.0 404 Not Found"), ==, 404);
  g_assert_cmpuint(lcvm_http_status("HTTP/1.1 461\r\n"), ==, 461);
  const char *bad[] = { "",
                        "HTTP/1.1",
                        "HTTP/2 200 OK",
                        "http/1.1 200 OK",
                        "HTTP/1.1 20 OK",
                        "HTTP/1.1 2000 OK",
                        "HTTP/1.1  200 OK",
                        "SSH-2.0-OpenSSH",
                        "HTTP/1.1 2x0" };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
    g_assert_cmpuint(lcvm_http_status(bad[i]), ==, 0);
  g_assert_cmpuint(lcvm_http_status(NULL), ==, 0);
}

int
main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/quote-path/known-codes-are-found-with-their-remedy",
                  known_codes_are_found_with_their_remedy);
  g_test_add_func("/quote-path/the-last-failure-counts-and-a-restart-after-it-is-seen",
                  the_last_failure_counts_and_a_restart_after_it_is_seen);
  g_test_add_func("/quote-path/codes-inside-other-numbers-or-words-do-not-count",
                  codes_inside_other_numbers_or_words_do_not_count);
  g_test_add_func("/quote-path/hostile-lines-are-cut-and-made-valid",
                  hostile_lines_are_cut_and_made_valid);
  g_test_add_func("/quote-path/registration-status", registration_status);
  g_test_add_func("/quote-path/http-status-lines", http_status_lines);
  return g_test_run();
}
