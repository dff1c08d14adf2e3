/* SPDX-License-Identifier: MIT */
/* Parsers of the quote path's evidence (see the header). */
#include "lcvm-quote-path.h"

#include <string.h>

#define REGISTER_PLATFORM                                                                          \
  "register the platform with Intel: in BIOS enable 'SGX Auto MP Registration' and reboot, or "    \
  "run PCKIDRetrievalTool against the PCCS; then: sudo systemctl restart qgsd"

static const LcvmQgsdFailure failures[] = {
  { "0xb011",
    "SGX_QCNL_ERROR_STATUS_UNEXPECTED: qgsd returns empty quotes (seen after ~4 days of uptime); "
    "guests reboot after ~3 minutes without a quote",
    "restart qgsd now (sudo systemctl restart qgsd) and restart it daily (a systemd timer "
    "running 'systemctl restart qgsd'): the known workaround, intel "
    "confidential-computing.tee.dcap #450" },
  { "0xb033",
    "TLS verification of the PCCS failed (use_secure_cert: true against a self-signed local "
    "PCCS); no quote can be made",
    "set \"use_secure_cert\": false in /etc/sgx_default_qcnl.conf and in the key provider's "
    "sgx_default_qcnl.conf, then: sudo systemctl restart qgsd" },
  { "0xb010", "SGX_QCNL_ERROR_STATUS_PLATFORM_UNKNOWN: the PCCS does not know this platform",
    REGISTER_PLATFORM },
};

void
lcvm_qgsd_journal_clear(LcvmQgsdJournal *journal)
{
  g_clear_pointer(&journal->failure_line, g_free);
}

/* code occurs in lower as a token: not preceded or followed by a hex digit or 'x'. */
static gboolean
has_code(const char *lower, const char *code)
{
  gsize n = strlen(code);
  for (const char *p = strstr(lower, code); p != NULL; p = strstr(p + 1, code)) {
    gboolean starts = p == lower || !(g_ascii_isalnum(p[-1]) || p[-1] == '_');
    if (starts && !g_ascii_isxdigit(p[n]) && p[n] != 'x')
      return TRUE;
  }
  return FALSE;
}

static const LcvmQgsdFailure *
line_failure(const char *lower)
{
  for (gsize i = 0; i < G_N_ELEMENTS(failures); i++)
    if (has_code(lower, failures[i].code))
      return &failures[i];
  return NULL;
}

void
lcvm_qgsd_journal_scan(const char *text, LcvmQgsdJournal *out)
{
  memset(out, 0, sizeof *out);
  g_auto(GStrv) lines = g_strsplit(text ? text : "", "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    if (lines[i][0] == '\0')
      continue;
    out->lines++;
    if (strstr(lines[i], "Started") != NULL) {
      out->restarted_after = out->failure != NULL;
      continue;
    }
    g_autofree char *lower = g_ascii_strdown(lines[i], MIN(strlen(lines[i]), 4096));
    const LcvmQgsdFailure *f = line_failure(lower);
    if (f == NULL)
      continue;
    out->failure = f;
    out->restarted_after = FALSE;
    g_free(out->failure_line);
    g_autofree char *valid = g_utf8_make_valid(lines[i], -1);
    out->failure_line = g_utf8_substring(valid, 0, MIN(g_utf8_strlen(valid, -1), 300));
  }
}

gboolean
lcvm_mpa_registration_complete(const char *output, char **status)
{
  g_auto(GStrv) lines = g_strsplit(output ? output : "", "\n", -1);
  const char *last = NULL;
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_strstrip(lines[i])[0] != '\0')
      last = lines[i];
  g_autofree char *valid = last ? g_utf8_make_valid(last, -1) : g_strdup("(no output)");
  *status = g_utf8_substring(valid, 0, MIN(g_utf8_strlen(valid, -1), 300));
  return output != NULL && strstr(output, "completed successfully") != NULL;
}

guint
lcvm_http_status(const char *response)
{
  if (response == NULL || !g_str_has_prefix(response, "HTTP/1.") || strlen(response) < 12 ||
      response[8] != ' ')
    return 0;
  const char *code = response + 9;
  if (!g_ascii_isdigit(code[0]) || !g_ascii_isdigit(code[1]) || !g_ascii_isdigit(code[2]) ||
      (code[3] != ' ' && code[3] != '\r' && code[3] != '\n' && code[3] != '\0'))
    return 0;
  return (guint)((code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0'));
}
