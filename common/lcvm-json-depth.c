/* SPDX-License-Identifier: MIT */
/* The bounded JSON loader (see the header). A first pass counts brackets outside strings and
 * finds where the root value ends; everything else about the text is json-glib's to judge
 * once that pass agreed. json-glib's scanner also reads single-quoted strings and skips C
 * comments, where a '"' would make this count see a string that json-glib does not: so
 * outside strings only what strict JSON has there is accepted, and a NUL byte nowhere. */
#include "lcvm-json-depth.h"

/* json-glib's messages quote the text near the error, cut at a byte count: capped, made valid. */
#define MAX_ERROR_TEXT 200

typedef enum {
  SCAN_OK,
  SCAN_EMPTY,
  SCAN_NOT_CONTAINER,
  SCAN_TRAILING,
  SCAN_TOO_DEEP,
  SCAN_NOT_STRICT,
  SCAN_NUL_ESCAPE,
} ScanVerdict;

/* Whitespace, structure and the characters of numbers, true, false and null. */
static gboolean
strict_outside_strings(char c)
{
  return g_ascii_isalnum(c) || strchr(" \t\r\n[]{}:,.+-", c) != NULL;
}

static gboolean
json_space(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static ScanVerdict
scan(const char *data, gsize len, guint max)
{
  guint depth = 0;
  gboolean in_string = FALSE, started = FALSE;
  for (gsize i = 0; i < len; i++) {
    char c = data[i];
    if (c == '\0')
      return SCAN_NOT_STRICT;
    if (in_string) {
      /* json-glib ends the C string there: what follows would be lost without a word. */
      if (c == '\\' && len - i > 5 && memcmp(data + i + 1, "u0000", 5) == 0)
        return SCAN_NUL_ESCAPE;
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c != '"' && !strict_outside_strings(c)) {
      return SCAN_NOT_STRICT;
    } else if (depth == 0 && json_space(c)) {
      continue;
    } else if (depth == 0 && started) {
      return SCAN_TRAILING; /* a second value: json-glib 1.6 would parse and leak it */
    } else if (depth == 0 && c != '[' && c != '{') {
      return SCAN_NOT_CONTAINER;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (c == '[' || c == '{') {
      started = TRUE;
      if (++depth > max)
        return SCAN_TOO_DEEP;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return started ? SCAN_OK : SCAN_EMPTY;
}

static gboolean
scan_refuses(const char *data, gsize len, GError **error)
{
  const char *why = NULL;
  switch (scan(data, len, LCVM_JSON_MAX_DEPTH)) {
  case SCAN_OK:
    return FALSE;
  case SCAN_EMPTY:
    why = "the document is empty";
    break;
  case SCAN_NOT_CONTAINER:
    why = "the document must be a JSON object or array";
    break;
  case SCAN_TRAILING:
    why = "the document has more after its first JSON value (one value per document)";
    break;
  case SCAN_TOO_DEEP:
    why = "the document is nested deeper than " G_STRINGIFY(LCVM_JSON_MAX_DEPTH) " levels";
    break;
  case SCAN_NOT_STRICT:
    why = "the document is not strict JSON (a comment, a single-quoted string or a NUL byte)";
    break;
  case SCAN_NUL_ESCAPE:
    why = "the document has a NUL character (\\u0000) in a string";
    break;
  }
  g_set_error_literal(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE, why);
  return TRUE;
}

static gboolean
strings_valid(JsonNode *node)
{
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObjectIter iter;
    const char *name;
    JsonNode *member;
    json_object_iter_init(&iter, json_node_get_object(node));
    while (json_object_iter_next(&iter, &name, &member))
      if (!g_utf8_validate(name, -1, NULL) || !strings_valid(member))
        return FALSE;
    return TRUE;
  }
  if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *array = json_node_get_array(node);
    for (guint i = 0; i < json_array_get_length(array); i++)
      if (!strings_valid(json_array_get_element(array, i)))
        return FALSE;
    return TRUE;
  }
  const char *s =
      json_node_get_value_type(node) == G_TYPE_STRING ? json_node_get_string(node) : NULL;
  return s == NULL || g_utf8_validate(s, -1, NULL);
}

/* json-glib's own message, valid UTF-8 and at most MAX_ERROR_TEXT bytes long. */
static void
make_error_text_valid(GError *error)
{
  if (error == NULL)
    return;
  gsize len = strlen(error->message);
  char *valid = g_utf8_make_valid(error->message, MIN(len, MAX_ERROR_TEXT));
  if (len > MAX_ERROR_TEXT) {
    /* The cut may have split a character: make_valid turned its head into U+FFFD. */
    char *cut = g_strconcat(valid, "…", NULL);
    g_free(valid);
    valid = cut;
  }
  g_free(error->message);
  error->message = valid;
}

gboolean
lcvm_json_load_bounded(JsonParser *parser, const char *data, gssize len, GError **error)
{
  gsize n = len < 0 ? strlen(data) : (gsize)len;
  if (scan_refuses(data, n, error))
    return FALSE;
  GError *local = NULL;
  if (!json_parser_load_from_data(parser, data, (gssize)n, &local)) {
    make_error_text_valid(local);
    g_propagate_error(error, local);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !(JSON_NODE_HOLDS_OBJECT(root) || JSON_NODE_HOLDS_ARRAY(root))) {
    g_set_error_literal(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE,
                        "the document must be a JSON object or array");
    return FALSE;
  }
  if (!strings_valid(root)) {
    g_set_error_literal(error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_INVALID_DATA,
                        "the document has a string that is not valid UTF-8 (a lone surrogate "
                        "escape such as \\ud800?)");
    return FALSE;
  }
  return TRUE;
}

JsonNode *
lcvm_json_parse_bounded(const char *data, gssize len, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  if (!lcvm_json_load_bounded(parser, data, len, error))
    return NULL;
  return json_node_ref(json_parser_get_root(parser));
}

/* ---- typed members ---- */

static JsonNode *
member_of_type(JsonObject *obj, const char *name, JsonNodeType type)
{
  JsonNode *n = obj != NULL ? json_object_get_member(obj, name) : NULL;
  return n != NULL && JSON_NODE_TYPE(n) == type ? n : NULL;
}

const char *
lcvm_json_string_member(JsonObject *obj, const char *name)
{
  JsonNode *n = member_of_type(obj, name, JSON_NODE_VALUE);
  return n != NULL && json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n) : NULL;
}

JsonObject *
lcvm_json_object_member(JsonObject *obj, const char *name)
{
  JsonNode *n = member_of_type(obj, name, JSON_NODE_OBJECT);
  return n != NULL ? json_node_get_object(n) : NULL;
}

gboolean
lcvm_json_int_member(JsonObject *obj, const char *name, gint64 *value)
{
  JsonNode *n = member_of_type(obj, name, JSON_NODE_VALUE);
  if (n == NULL || json_node_get_value_type(n) != G_TYPE_INT64)
    return FALSE;
  *value = json_node_get_int(n);
  return TRUE;
}
