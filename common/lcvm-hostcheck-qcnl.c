/* SPDX-License-Identifier: MIT */
/* Host check, QCNL area: Intel's quote provider config ([paths] qcnl_conf, normally
 * /etc/sgx_default_qcnl.conf), which qgsd (the guest's TD quotes) and the key provider (their
 * verification) use to reach a PCCS (reference/lium.md §3, §8.10). Intel ships it as JSON with
 * // comments and leading commas; line edits have broken it (au11), and use_secure_cert: true
 * rejects the self-signed certificate of a local PCCS ("[QCNL] CURL error: (60)", QPL 0xb033:
 * the guest reboots at ~3 minutes). Reads the file only. */
#include "lcvm-hostcheck-private.h"
#include "lcvm-json-depth.h"

#include <string.h>

#define QCNL_REMEDY_WRITE                                                                          \
  "write the whole file (never edit single lines), strict JSON, e.g. {\"pccs_url\": "              \
  "\"https://localhost:8081/sgx/certification/v4/\", \"use_secure_cert\": false, "                 \
  "\"retry_times\": 6, \"retry_delay\": 10, \"local_cache_only\": false}, then: sudo systemctl "   \
  "restart qgsd and restart the key provider (lium-cvm key-provider stop; lium-cvm key-provider "  \
  "start)"

/* The text without its // comments (Intel's template has them; strict JSON has none). A "//"
 * inside a string (every URL) stays. */
static char *
strip_line_comments(const char *text)
{
  GString *out = g_string_sized_new(strlen(text));
  gboolean in_string = FALSE;
  for (const char *p = text; *p != '\0'; p++) {
    if (in_string) {
      g_string_append_c(out, *p);
      if (*p == '\\' && p[1] != '\0')
        g_string_append_c(out, *++p);
      else if (*p == '"')
        in_string = FALSE;
    } else if (p[0] == '/' && p[1] == '/') {
      while (p[1] != '\0' && p[1] != '\n')
        p++;
    } else {
      in_string = *p == '"';
      g_string_append_c(out, *p);
    }
  }
  return g_string_free(out, FALSE);
}

static gboolean
is_local_url(const char *url)
{
  static const char *const local[] = { "https://localhost", "https://127.", "https://[::1]",
                                       "http://localhost", "http://127." };
  for (gsize i = 0; i < G_N_ELEMENTS(local); i++)
    if (g_str_has_prefix(url, local[i]))
      return TRUE;
  return FALSE;
}

gboolean
lcvm_qcnl_parse(const char *text, const char *path, char **pccs_url, gboolean *secure,
                gboolean *secure_given, GError **error)
{
  g_autofree char *json = strip_line_comments(text);
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) local = NULL;
  JsonNode *root =
      lcvm_json_load_bounded(parser, json, -1, &local) ? json_parser_get_root(parser) : NULL;
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s is not a JSON object: %s", path,
                local ? local->message : "another JSON value");
    return FALSE;
  }
  JsonObject *conf = json_node_get_object(root);
  JsonNode *url = json_object_get_member(conf, "pccs_url");
  if (url == NULL || !JSON_NODE_HOLDS_VALUE(url) ||
      json_node_get_value_type(url) != G_TYPE_STRING || json_node_get_string(url)[0] == '\0') {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "%s has no pccs_url", path);
    return FALSE;
  }
  JsonNode *n = json_object_get_member(conf, "use_secure_cert");
  /* QCNL's default is true. */
  *secure_given = n != NULL;
  *secure = n == NULL || !JSON_NODE_HOLDS_VALUE(n) ||
            json_node_get_value_type(n) != G_TYPE_BOOLEAN || json_node_get_boolean(n);
  *pccs_url = g_strdup(json_node_get_string(url));
  return TRUE;
}

static void
check_secure_cert(HostCtx *ctx, const char *pccs_url, gboolean secure, gboolean given)
{
  LcvmCheck *c = hc_add(ctx, "sgx.qcnl.use_secure_cert", "QCNL certificate check",
                        "false for a local PCCS with a self-signed certificate");
  if (!secure) {
    hc_set(c, LCVM_CHECK_OK, "false (the PCCS certificate is not verified)");
    return;
  }
  if (!is_local_url(pccs_url)) {
    hc_set(c, LCVM_CHECK_OK, "true, PCCS %s", pccs_url);
    return;
  }
  hc_set(c, LCVM_CHECK_WARN, "%s with a local PCCS (%s)", given ? "true" : "true (the default)",
         pccs_url);
  hc_remedy(c,
            "a local PCCS has a self-signed certificate, which use_secure_cert: true rejects "
            "([QCNL] CURL error: (60), QPL 0xb033; the guest reboots after ~3 minutes): set "
            "\"use_secure_cert\": false in %s, then: sudo systemctl restart qgsd",
            ctx->config->qcnl_conf);
}

void
hc_check_qcnl(HostCtx *ctx)
{
  const char *path = ctx->config->qcnl_conf;
  LcvmCheck *c = hc_add(ctx, "sgx.qcnl", "QCNL config (PCCS)",
                        "[paths] qcnl_conf is JSON (// comments allowed) with a pccs_url");
  if (path[0] == '\0') {
    hc_set(c, LCVM_CHECK_SKIP, "[paths] qcnl_conf is empty");
    return;
  }
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *file = g_path_get_basename(path);
  g_autofree char *text = hc_read(dir, file, &error);
  if (text == NULL) {
    hc_set(c,
           g_error_matches(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED) ? LCVM_CHECK_UNKNOWN
                                                                            : LCVM_CHECK_FAIL,
           "%s", error->message);
    hc_remedy(c, "install Intel's libsgx-dcap-default-qpl and %s", QCNL_REMEDY_WRITE);
    return;
  }
  g_autofree char *url = NULL;
  gboolean secure = TRUE, given = FALSE;
  if (!lcvm_qcnl_parse(text, path, &url, &secure, &given, &error)) {
    hc_set(c, LCVM_CHECK_FAIL, "%s", error->message);
    hc_remedy(c, "%s", QCNL_REMEDY_WRITE);
    return;
  }
  hc_set(c, LCVM_CHECK_OK, "pccs_url %s", url);
  check_secure_cert(ctx, url, secure, given);
}
