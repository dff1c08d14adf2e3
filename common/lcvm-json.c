/* SPDX-License-Identifier: MIT */
/* json-glib helpers (see the header). */
#include "lcvm-json.h"

void
lcvm_json_add_string_or_null(JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name(b, name);
  if (value != NULL)
    json_builder_add_string_value(b, value);
  else
    json_builder_add_null_value(b);
}

void
lcvm_json_add_int_or_null(JsonBuilder *b, const char *name, gint64 value)
{
  json_builder_set_member_name(b, name);
  if (value >= 0)
    json_builder_add_int_value(b, value);
  else
    json_builder_add_null_value(b);
}

char *
lcvm_json_pretty(JsonBuilder *b, gsize *len)
{
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  json_generator_set_pretty(gen, TRUE);
  json_generator_set_root(gen, root);
  return json_generator_to_data(gen, len);
}
