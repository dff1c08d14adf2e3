/* SPDX-License-Identifier: MIT */
/* app-compose.json construction (see the header). The object is built in the one key order
 * Lium's dstack.py uses; changing the order, a boolean or the text decoding changes the
 * compose hash and the validator refuses the VM. */
#include "lcvm-compose.h"
#include "lcvm-error.h"
#include "lcvm-pyjson.h"
#include <json-glib/json-glib.h>
#include <string.h>

char *
lcvm_compose_decode_text(const char *what, const char *data, gsize len, GError **error)
{
  if (memchr(data, '\0', len) != NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s contains a NUL byte: it is not a text file", what);
    return NULL;
  }
  const char *bad = NULL;
  if (!g_utf8_validate_len(data, len, &bad)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is not valid UTF-8 (at byte %" G_GSIZE_FORMAT "): save it as UTF-8", what,
                (gsize)(bad - data));
    return NULL;
  }
  GString *out = g_string_sized_new(len + 1);
  for (gsize i = 0; i < len; i++) {
    if (data[i] != '\r') {
      g_string_append_c(out, data[i]);
      continue;
    }
    g_string_append_c(out, '\n');
    if (i + 1 < len && data[i + 1] == '\n')
      i++;
  }
  return g_string_free(out, FALSE);
}

gboolean
lcvm_sha256_hex_valid(const char *text)
{
  if (text == NULL || strlen(text) != 64)
    return FALSE;
  for (const char *p = text; *p; p++)
    if (!g_ascii_isdigit(*p) && !(*p >= 'a' && *p <= 'f'))
      return FALSE;
  return TRUE;
}

gboolean
lcvm_compose_needs_runner_digest(const char *text)
{
  return strstr(text, "${" LCVM_RUNNER_DIGEST_KEY "}") != NULL;
}

static gboolean
digest_valid(const char *digest, GError **error)
{
  if (digest == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is not set (required to pin the measured executor-runner): set it in .env "
                "to sha256: followed by 64 lower-case hex digits",
                LCVM_RUNNER_DIGEST_KEY);
    return FALSE;
  }
  if (!g_str_has_prefix(digest, "sha256:") || !lcvm_sha256_hex_valid(digest + 7)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s='%s' is not valid: expected sha256: followed by 64 lower-case hex digits",
                LCVM_RUNNER_DIGEST_KEY, digest);
    return FALSE;
  }
  return TRUE;
}

static gboolean
is_name_char(char c)
{
  return g_ascii_isalnum(c) || c == '_';
}

/* Length of the reference to the digest variable at p ('$'), or 0 when p is not one. */
static gsize
reference_length(const char *p)
{
  static const char name[] = LCVM_RUNNER_DIGEST_KEY;
  const gsize n = sizeof name - 1;
  if (p[1] == '{')
    return strncmp(p + 2, name, n) == 0 && p[2 + n] == '}' ? n + 3 : 0;
  if (strncmp(p + 1, name, n) == 0 && !is_name_char(p[1 + n]))
    return n + 1;
  return 0;
}

char *
lcvm_compose_stamp_runner_digest(const char *text, const char *digest, GError **error)
{
  if (!digest_valid(digest, error))
    return NULL;
  GString *out = g_string_new(NULL);
  for (const char *p = text; *p != '\0';) {
    gsize ref = *p == '$' ? reference_length(p) : 0;
    if (ref == 0) {
      g_string_append_c(out, *p++);
      continue;
    }
    g_string_append(out, digest);
    p += ref;
  }
  return g_string_free(out, FALSE);
}

char *
lcvm_compose_build(const LcvmComposeInput *input, gsize *len, GError **error)
{
  g_autoptr(JsonObject) o = json_object_new();
  json_object_set_int_member(o, "manifest_version", 1);
  json_object_set_string_member(o, "name", "example");
  json_object_set_string_member(o, "version", "1.0.0");
  json_object_set_array_member(o, "features", json_array_new());
  json_object_set_string_member(o, "runner", "docker-compose");
  json_object_set_string_member(o, "docker_compose_file", input->compose);
  json_object_set_boolean_member(o, "local_key_provider_enabled", TRUE);
  json_object_set_boolean_member(o, "public_logs", input->enable_logs);
  json_object_set_boolean_member(o, "secure_time", FALSE);
  if (input->enable_sysinfo) {
    json_object_set_boolean_member(o, "public_sysinfo", TRUE);
    json_object_set_boolean_member(o, "public_tcbinfo", TRUE);
  }
  if (input->init_script != NULL)
    json_object_set_string_member(o, "init_script", input->init_script);
  if (input->pre_launch_script != NULL)
    json_object_set_string_member(o, "pre_launch_script", input->pre_launch_script);
  g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), o);
  return lcvm_pyjson_dump(node, 4, len, error);
}

char *
lcvm_compose_hash(const char *data, gsize len)
{
  return g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
}
