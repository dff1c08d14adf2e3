/* SPDX-License-Identifier: MIT */
/* The quote path checks of `check --deep` (see the header). */
#include "cmd-check-quote.h"
#include "lcvm-capture.h"
#include "lcvm-quote-path.h"

#include <string.h>

#define RUN_TIMEOUT_MS  15000
#define RUN_MAX_OUTPUT  (4 * 1024 * 1024)
#define PCCS_TIMEOUT_S  5
#define PCCS_MAX_ANSWER 32
#define JOURNAL_LINES   "5000"

/* ---- qgsd's journal ---- */

static void
check_qgsd_journal(LcvmCli *cli, LcvmCheckReport *report)
{
  const LcvmConfig *cfg = cli->config;
  LcvmCheck *c = lcvm_check_report_add(report, "qgsd.health", "qgsd produces quotes",
                                       "no 0xb011/0xb033/0xb010 in qgsd's journal since it last "
                                       "started");
  if (cfg->journalctl[0] == '\0') {
    lcvm_check_set(c, LCVM_CHECK_SKIP, "[tools] journalctl is empty");
    return;
  }
  g_autofree char *unit = g_strdup_printf("%s.service", cfg->qgsd_unit);
  const char *argv[] = {
    cfg->journalctl, "--no-pager",  "--quiet", "--output=short-iso", "--unit", unit,
    "--lines",       JOURNAL_LINES, NULL
  };
  int status = 0;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = lcvm_capture(argv, RUN_TIMEOUT_MS, RUN_MAX_OUTPUT, &status, &error);
  LcvmQgsdJournal j;
  lcvm_qgsd_journal_scan(text, &j);
  if (text == NULL || j.lines == 0 || !g_spawn_check_wait_status(status, NULL)) {
    lcvm_check_set(c, LCVM_CHECK_UNKNOWN, "cannot read %s's journal: %s", unit,
                   text == NULL   ? error->message
                   : j.lines == 0 ? "no entries (no such unit, or you may not read the system "
                                    "journal)"
                                  : "journalctl failed");
    lcvm_check_set_remedy(c,
                          "run 'lium-cvm check --deep' as root, or join group "
                          "systemd-journal; check by hand: sudo journalctl -u %s",
                          unit);
  } else if (j.failure == NULL) {
    lcvm_check_set(c, LCVM_CHECK_OK, "%u journal lines, none with a known failure code", j.lines);
  } else if (j.restarted_after) {
    lcvm_check_set(c, LCVM_CHECK_WARN, "restarted since it logged %s (%s): %s", j.failure->code,
                   j.failure->meaning, j.failure_line);
    lcvm_check_set_remedy(c, "%s", j.failure->remedy);
  } else {
    lcvm_check_set(c, LCVM_CHECK_FAIL, "%s: %s; last: %s", j.failure->code, j.failure->meaning,
                   j.failure_line);
    lcvm_check_set_remedy(c, "%s", j.failure->remedy);
  }
  lcvm_qgsd_journal_clear(&j);
}

/* ---- the PCCS ---- */

static gboolean
accept_any(GTlsConnection *conn, GTlsCertificate *cert, GTlsCertificateFlags errors, gpointer data)
{
  return TRUE;
}

/* use_secure_cert: false — QCNL then accepts any certificate, and so does this probe. */
static void
on_client_event(GSocketClient *client, GSocketClientEvent event, GSocketConnectable *connectable,
                GIOStream *connection, gpointer data)
{
  if (event == G_SOCKET_CLIENT_TLS_HANDSHAKING && G_IS_TLS_CONNECTION(connection))
    g_signal_connect(connection, "accept-certificate", G_CALLBACK(accept_any), NULL);
}

/* GET path on the PCCS; its HTTP status, 0 with error when it cannot be asked. */
static guint
pccs_get(const char *pccs_url, gboolean secure, char **target, GError **error)
{
  g_autoptr(GUri) uri = g_uri_parse(pccs_url, G_URI_FLAGS_NONE, error);
  if (uri == NULL)
    return 0;
  gboolean tls = g_strcmp0(g_uri_get_scheme(uri), "https") == 0;
  int port = g_uri_get_port(uri) > 0 ? g_uri_get_port(uri) : (tls ? 443 : 80);
  const char *path = g_uri_get_path(uri);
  *target = g_strdup_printf("%s%srootcacrl", path, g_str_has_suffix(path, "/") ? "" : "/");
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_set_enable_proxy(client, FALSE);
  g_socket_client_set_timeout(client, PCCS_TIMEOUT_S);
  g_socket_client_set_tls(client, tls);
  if (tls && !secure)
    g_signal_connect(client, "event", G_CALLBACK(on_client_event), NULL);
  g_autoptr(GSocketConnection) conn =
      g_socket_client_connect_to_host(client, g_uri_get_host(uri), (guint16)port, NULL, error);
  if (conn == NULL)
    return 0;
  g_autofree char *request = g_strdup_printf(
      "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", *target, g_uri_get_host(uri));
  GOutputStream *os = g_io_stream_get_output_stream(G_IO_STREAM(conn));
  if (!g_output_stream_write_all(os, request, strlen(request), NULL, NULL, error))
    return 0;
  char answer[PCCS_MAX_ANSWER + 1];
  gsize got = 0;
  GInputStream *is = g_io_stream_get_input_stream(G_IO_STREAM(conn));
  if (!g_input_stream_read_all(is, answer, PCCS_MAX_ANSWER, &got, NULL, error))
    return 0;
  answer[got] = '\0';
  guint code = lcvm_http_status(answer);
  if (code == 0)
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "it did not answer HTTP");
  return code;
}

static void
check_pccs(LcvmCli *cli, LcvmCheckReport *report)
{
  const char *path = cli->config->qcnl_conf;
  LcvmCheck *c = lcvm_check_report_add(report, "pccs.reachable", "PCCS answers",
                                       "the PCCS of pccs_url answers GET rootcacrl with 200, "
                                       "checked as use_secure_cert says");
  g_autofree char *text = NULL;
  g_autofree char *url = NULL;
  gboolean secure = TRUE, given = FALSE;
  g_autoptr(GError) error = NULL;
  if (path[0] == '\0' || !g_file_get_contents(path, &text, NULL, &error) ||
      !lcvm_qcnl_parse(text, path, &url, &secure, &given, &error)) {
    lcvm_check_set(c, LCVM_CHECK_SKIP, "no usable QCNL config (%s)",
                   error ? error->message : "[paths] qcnl_conf is empty");
    return;
  }
  g_autofree char *target = NULL;
  guint code = pccs_get(url, secure, &target, &error);
  const char *how = secure ? "use_secure_cert: true" : "use_secure_cert: false";
  if (code == 200) {
    lcvm_check_set(c, LCVM_CHECK_OK, "%s answers 200 (%s)", url, how);
    return;
  }
  if (code != 0) {
    lcvm_check_set(c, LCVM_CHECK_FAIL, "GET %s answered %u (%s)", target, code, url);
    lcvm_check_set_remedy(c, "pccs_url must end in /sgx/certification/v4/; the PCCS needs its "
                             "Intel API key (sudo journalctl -u pccs)");
  } else if (g_error_matches(error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE) ||
             (error != NULL && error->domain == G_TLS_ERROR)) {
    lcvm_check_set(c, LCVM_CHECK_FAIL,
                   "%s: TLS verification failed (%s) with %s: qgsd fails the "
                   "same way (QPL 0xb033)",
                   url, error->message, how);
    lcvm_check_set_remedy(c,
                          "for a local PCCS with a self-signed certificate set "
                          "\"use_secure_cert\": false in %s, then: sudo systemctl restart qgsd",
                          path);
  } else {
    lcvm_check_set(c, LCVM_CHECK_FAIL, "%s does not answer: %s", url,
                   error ? error->message : "no answer");
    lcvm_check_set_remedy(c,
                          "start the PCCS (sudo systemctl start pccs) or point pccs_url in %s "
                          "at one that answers",
                          path);
  }
}

/* ---- SGX registration ---- */

static void
check_registration(LcvmCli *cli, LcvmCheckReport *report)
{
  const char *tool = cli->config->mpa_manage;
  LcvmCheck *c = lcvm_check_report_add(report, "sgx.registration", "SGX platform registration",
                                       "mpa_manage -get_registration_status: completed "
                                       "successfully");
  if (tool[0] == '\0' || !g_file_test(tool, G_FILE_TEST_IS_EXECUTABLE)) {
    lcvm_check_set(c, LCVM_CHECK_UNKNOWN, "%s is not installed",
                   tool[0] ? tool : "[tools] mpa_manage");
    lcvm_check_set_remedy(c, "install Intel's sgx-ra-service (mpa_manage), or look at the "
                             "number of pck_cert rows in the local PCCS: 0 means unregistered");
    return;
  }
  const char *argv[] = { tool, "-get_registration_status", NULL };
  int status = 0;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = lcvm_capture(argv, RUN_TIMEOUT_MS, RUN_MAX_OUTPUT, &status, &error);
  g_autofree char *line = NULL;
  if (out != NULL && lcvm_mpa_registration_complete(out, &line)) {
    lcvm_check_set(c, LCVM_CHECK_OK, "%s", line);
    return;
  }
  lcvm_check_set(c, out ? LCVM_CHECK_FAIL : LCVM_CHECK_UNKNOWN, "%s", out ? line : error->message);
  lcvm_check_set_remedy(c, "register the platform with Intel: in BIOS enable 'SGX Auto MP "
                           "Registration' and reboot, or run PCKIDRetrievalTool; without it "
                           "AESM fails with error 44 and quotes are not verified (0xb010)");
}

void
cli_check_quote_path(LcvmCli *cli, LcvmCheckReport *report)
{
  check_qgsd_journal(cli, report);
  check_pccs(cli, report);
  check_registration(cli, report);
}
