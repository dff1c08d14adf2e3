/* SPDX-License-Identifier: MIT */
/* The key provider's containers as docker reports them: `compose ps` and `docker inspect`
 * parsed (never trusted to have the expected types) into Container records. */
#include "helper-keyprovider.h"
#include "helper-keyprovider-private.h"
#include "lcvm-json-depth.h"
#include <json-glib/json-glib.h>

/* docker's output is parsed, not trusted to have the expected types. */
static char *
member_string(JsonObject *o, const char *name)
{
  const char *s = lcvm_json_string_member(o, name);
  return g_strdup(s != NULL ? s : "");
}

static gint64
member_int(JsonObject *o, const char *name)
{
  gint64 v = 0;
  return lcvm_json_int_member(o, name, &v) ? v : 0;
}

static gboolean
state_running(JsonObject *o)
{
  JsonObject *state = lcvm_json_object_member(o, "State");
  JsonNode *running = state != NULL ? json_object_get_member(state, "Running") : NULL;
  return running != NULL && JSON_NODE_HOLDS_VALUE(running) &&
         json_node_get_value_type(running) == G_TYPE_BOOLEAN && json_node_get_boolean(running);
}

static void
container_free(gpointer p)
{
  Container *c = p;
  g_free(c->id);
  g_free(c->name);
  g_free(c->service);
  g_free(c->state);
  g_free(c->image);
  g_free(c->image_id);
  g_free(c);
}

GPtrArray *
helper_keyprovider_docker_objects(const char *text, GError **error)
{
  g_autoptr(GPtrArray) objects = g_ptr_array_new_with_free_func((GDestroyNotify)json_node_unref);
  g_autofree char *trimmed = g_strstrip(g_strdup(text));
  g_auto(GStrv) lines =
      trimmed[0] == '[' ? g_strdupv((char *[]){ trimmed, NULL }) : g_strsplit(trimmed, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    if (g_strstrip(lines[i])[0] == '\0')
      continue;
    g_autoptr(JsonParser) parser = json_parser_new_immutable();
    if (!lcvm_json_load_bounded(parser, lines[i], -1, error))
      return helper_kp_prefix_error(error, "unexpected docker output"), NULL;
    JsonNode *root = json_parser_get_root(parser);
    if (JSON_NODE_HOLDS_OBJECT(root)) {
      g_ptr_array_add(objects, json_node_copy(root));
    } else if (JSON_NODE_HOLDS_ARRAY(root)) {
      JsonArray *a = json_node_get_array(root);
      for (guint j = 0; j < json_array_get_length(a); j++)
        if (JSON_NODE_HOLDS_OBJECT(json_array_get_element(a, j)))
          g_ptr_array_add(objects, json_node_copy(json_array_get_element(a, j)));
    }
  }
  return g_steal_pointer(&objects);
}

static gboolean
inspect_containers(const Compose *c, GPtrArray *containers, GError **error)
{
  g_autoptr(GStrvBuilder) b = g_strv_builder_new();
  const char *prefix[] = { "inspect", "--type", "container", "--", NULL };
  g_strv_builder_addv(b, prefix);
  for (guint i = 0; i < containers->len; i++)
    g_strv_builder_add(b, ((Container *)containers->pdata[i])->id);
  g_auto(GStrv) args = g_strv_builder_end(b);
  g_autofree char *text =
      helper_kp_docker_run(c, (const char *const *)args, HELPER_KP_QUERY_TIMEOUT_S, error);
  g_autoptr(GPtrArray) objects = text ? helper_keyprovider_docker_objects(text, error) : NULL;
  if (objects == NULL)
    return FALSE;
  for (guint i = 0; i < objects->len; i++) {
    JsonObject *o = json_node_get_object(objects->pdata[i]);
    g_autofree char *id = member_string(o, "Id");
    for (guint j = 0; j < containers->len; j++) {
      Container *ct = containers->pdata[j];
      if (ct->id[0] == '\0' || !g_str_has_prefix(id, ct->id))
        continue;
      g_free(ct->image_id);
      ct->image_id = member_string(o, "Image");
      ct->restarts = member_int(o, "RestartCount");
      ct->running = state_running(o);
    }
  }
  return TRUE;
}

GPtrArray *
helper_kp_list_containers(const Compose *c, GError **error)
{
  const char *args[] = { "ps", "--all", "--format", "json", NULL };
  g_autofree char *text = helper_kp_compose_run(c, args, HELPER_KP_QUERY_TIMEOUT_S, error);
  g_autoptr(GPtrArray) objects = text ? helper_keyprovider_docker_objects(text, error) : NULL;
  if (objects == NULL)
    return NULL;
  g_autoptr(GPtrArray) containers = g_ptr_array_new_with_free_func(container_free);
  for (guint i = 0; i < objects->len; i++) {
    JsonObject *o = json_node_get_object(objects->pdata[i]);
    Container *ct = g_new0(Container, 1);
    ct->id = member_string(o, "ID");
    ct->name = member_string(o, "Name");
    ct->service = member_string(o, "Service");
    ct->state = member_string(o, "State");
    ct->image = member_string(o, "Image");
    g_ptr_array_add(containers, ct);
  }
  if (containers->len > 0 && !inspect_containers(c, containers, error))
    return NULL;
  return g_steal_pointer(&containers);
}
