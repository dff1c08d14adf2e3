/* SPDX-License-Identifier: MIT */
/* The bounded JSON loader (common/lcvm-json-depth.c), the typed member getters over whatever it
 * accepts, and the Python json.dumps writer (common/lcvm-pyjson.c) that app-compose.json and
 * .user-config go through. Accepted documents must hold only valid UTF-8. */
#include "fuzz.h"
#include "lcvm-json-depth.h"
#include "lcvm-pyjson.h"
#include <string.h>

static void
walk(JsonNode *node)
{
  if (JSON_NODE_HOLDS_OBJECT(node)) {
    JsonObject *o = json_node_get_object(node);
    JsonObjectIter it;
    const char *name;
    JsonNode *member;
    json_object_iter_init(&it, o);
    while (json_object_iter_next(&it, &name, &member)) {
      g_assert(g_utf8_validate(name, -1, NULL));
      gint64 v;
      lcvm_json_string_member(o, name);
      lcvm_json_object_member(o, name);
      lcvm_json_int_member(o, name, &v);
      walk(member);
    }
  } else if (JSON_NODE_HOLDS_ARRAY(node)) {
    JsonArray *a = json_node_get_array(node);
    for (guint i = 0; i < json_array_get_length(a); i++)
      walk(json_array_get_element(a, i));
  } else if (JSON_NODE_HOLDS_VALUE(node) && json_node_get_value_type(node) == G_TYPE_STRING) {
    g_assert(g_utf8_validate(json_node_get_string(node), -1, NULL));
  }
}

FUZZ_PLAIN_INITIALIZE

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = lcvm_json_parse_bounded((const char *)data, (gssize)size, &error);
  if (root == NULL) {
    g_assert(g_utf8_validate(error->message, -1, NULL));
    return 0;
  }
  g_assert(JSON_NODE_HOLDS_OBJECT(root) || JSON_NODE_HOLDS_ARRAY(root));
  walk(root);
  g_autofree char *dumped = lcvm_pyjson_dump(root, 4, NULL, NULL);
  return 0;
}
