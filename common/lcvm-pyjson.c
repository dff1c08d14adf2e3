/* SPDX-License-Identifier: MIT */
/* Python json.dumps byte format (see the header). Mirrors json.encoder's pure-Python path:
 * _make_iterencode for layout and py_encode_basestring_ascii for strings. */
#include "lcvm-pyjson.h"
#include <gio/gio.h>

static gboolean dump_node(GString *out, JsonNode *node, int indent, int level, GError **error);

static void
append_escaped_unit(GString *out, gunichar c)
{
  g_string_append_printf(out, "\\u%04x", c);
}

static void
append_char(GString *out, gunichar c)
{
  switch (c) {
  case '"':
    g_string_append(out, "\\\"");
    return;
  case '\\':
    g_string_append(out, "\\\\");
    return;
  case '\n':
    g_string_append(out, "\\n");
    return;
  case '\r':
    g_string_append(out, "\\r");
    return;
  case '\t':
    g_string_append(out, "\\t");
    return;
  case '\b':
    g_string_append(out, "\\b");
    return;
  case '\f':
    g_string_append(out, "\\f");
    return;
  default:
    break;
  }
  if (c >= 0x20 && c <= 0x7e) {
    g_string_append_c(out, (char)c);
    return;
  }
  if (c < 0x10000) {
    append_escaped_unit(out, c);
    return;
  }
  gunichar v = c - 0x10000;
  append_escaped_unit(out, 0xd800 | (v >> 10));
  append_escaped_unit(out, 0xdc00 | (v & 0x3ff));
}

/* Appends a JSON string literal for text (valid UTF-8) with Python's ASCII escapes. */
static gboolean
lcvm_pyjson_append_string(GString *out, const char *text, GError **error)
{
  if (!g_utf8_validate(text, -1, NULL)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "text is not valid UTF-8");
    return FALSE;
  }
  g_string_append_c(out, '"');
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p))
    append_char(out, g_utf8_get_char(p));
  g_string_append_c(out, '"');
  return TRUE;
}

static void
newline_indent(GString *out, int indent, int level)
{
  g_string_append_c(out, '\n');
  for (int i = 0; i < indent * level; i++)
    g_string_append_c(out, ' ');
}

/* Before each item: nothing (first) or the item separator, then the indentation. */
static void
item_prefix(GString *out, int indent, int level, gboolean first)
{
  if (!first)
    g_string_append(out, indent < 0 ? ", " : ",");
  if (indent >= 0)
    newline_indent(out, indent, level);
}

static void
container_end(GString *out, int indent, int level, char close)
{
  if (indent >= 0)
    newline_indent(out, indent, level);
  g_string_append_c(out, close);
}

static gboolean
dump_array(GString *out, JsonArray *array, int indent, int level, GError **error)
{
  guint n = json_array_get_length(array);
  if (n == 0) {
    g_string_append(out, "[]");
    return TRUE;
  }
  g_string_append_c(out, '[');
  for (guint i = 0; i < n; i++) {
    item_prefix(out, indent, level + 1, i == 0);
    if (!dump_node(out, json_array_get_element(array, i), indent, level + 1, error))
      return FALSE;
  }
  container_end(out, indent, level, ']');
  return TRUE;
}

static gboolean
dump_object(GString *out, JsonObject *object, int indent, int level, GError **error)
{
  if (json_object_get_size(object) == 0) {
    g_string_append(out, "{}");
    return TRUE;
  }
  g_string_append_c(out, '{');
  JsonObjectIter iter;
  const char *key;
  JsonNode *member;
  gboolean first = TRUE;
  json_object_iter_init_ordered(&iter, object);
  while (json_object_iter_next_ordered(&iter, &key, &member)) {
    item_prefix(out, indent, level + 1, first);
    first = FALSE;
    if (!lcvm_pyjson_append_string(out, key, error))
      return FALSE;
    g_string_append(out, ": ");
    if (!dump_node(out, member, indent, level + 1, error))
      return FALSE;
  }
  container_end(out, indent, level, '}');
  return TRUE;
}

static gboolean
dump_value(GString *out, JsonNode *node, GError **error)
{
  GType type = json_node_get_value_type(node);
  if (type == G_TYPE_INT64) {
    g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(node));
    return TRUE;
  }
  if (type == G_TYPE_BOOLEAN) {
    g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
    return TRUE;
  }
  if (type == G_TYPE_STRING)
    return lcvm_pyjson_append_string(out, json_node_get_string(node), error);
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
              "a %s value cannot be written in Python's JSON format", g_type_name(type));
  return FALSE;
}

static gboolean
dump_node(GString *out, JsonNode *node, int indent, int level, GError **error)
{
  switch (JSON_NODE_TYPE(node)) {
  case JSON_NODE_OBJECT:
    return dump_object(out, json_node_get_object(node), indent, level, error);
  case JSON_NODE_ARRAY:
    return dump_array(out, json_node_get_array(node), indent, level, error);
  case JSON_NODE_NULL:
    g_string_append(out, "null");
    return TRUE;
  case JSON_NODE_VALUE:
    return dump_value(out, node, error);
  }
  g_assert_not_reached();
}

char *
lcvm_pyjson_dump(JsonNode *node, int indent, gsize *len, GError **error)
{
  g_autoptr(GString) out = g_string_new(NULL);
  if (!dump_node(out, node, indent, 0, error))
    return NULL;
  if (len != NULL)
    *len = out->len;
  return g_string_free(g_steal_pointer(&out), FALSE);
}
