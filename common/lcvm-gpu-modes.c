/* SPDX-License-Identifier: MIT */
/* gpu-modes.json: {"version": 1, "devices": {"DDDD:BB:DD.F": {"kind", "cc", "ppcie",
 * "queried_at", "broken"}}}. Read with O_NOFOLLOW and a size cap; values are checked against
 * the fixed sets, so a reader never shows what the helper could not have written. */
#include "lcvm-json.h"
#include "lcvm-gpu-modes.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "lcvm-json-depth.h"
#include "lcvm-safe-io.h"
#include "lcvm-validate.h"
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <unistd.h>

#define MODES_MAX_BYTES (256 * 1024)
#define MODES_VERSION   1

static const char *const kinds[] = { "gpu", "nvswitch", NULL };
static const char *const cc_values[] = {
  "off", "on", "devtools", "invalid-devtools-only-fix-by-setting-cc-mode", "unsupported", NULL
};
static const char *const ppcie_values[] = { "on", "off", "unsupported", NULL };

LcvmGpuMode *
lcvm_gpu_mode_new(const char *slot, const char *kind)
{
  LcvmGpuMode *m = g_new0(LcvmGpuMode, 1);
  m->slot = g_strdup(slot);
  m->kind = g_strdup(kind);
  return m;
}

LcvmGpuMode *
lcvm_gpu_mode_copy(const LcvmGpuMode *m)
{
  LcvmGpuMode *c = lcvm_gpu_mode_new(m->slot, m->kind);
  c->cc = g_strdup(m->cc);
  c->ppcie = g_strdup(m->ppcie);
  c->queried_at = m->queried_at;
  c->broken = m->broken;
  return c;
}

void
lcvm_gpu_mode_free(LcvmGpuMode *m)
{
  if (m == NULL)
    return;
  g_free(m->slot);
  g_free(m->kind);
  g_free(m->cc);
  g_free(m->ppcie);
  g_free(m);
}

GHashTable *
lcvm_gpu_modes_new(void)
{
  return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)lcvm_gpu_mode_free);
}

static const char *
member_in(JsonObject *o, const char *name, const char *const *allowed)
{
  const char *v = lcvm_json_string_member(o, name);
  return v != NULL && g_strv_contains(allowed, v) ? v : NULL;
}

static LcvmGpuMode *
entry_from_json(const char *slot, JsonNode *node)
{
  if (!lcvm_slot_is_canonical(slot) || !JSON_NODE_HOLDS_OBJECT(node))
    return NULL;
  JsonObject *o = json_node_get_object(node);
  const char *kind = member_in(o, "kind", kinds);
  if (kind == NULL)
    return NULL;
  g_autoptr(LcvmGpuMode) m = lcvm_gpu_mode_new(slot, kind);
  m->cc = g_strdup(member_in(o, "cc", cc_values));
  m->ppcie = g_strdup(member_in(o, "ppcie", ppcie_values));
  JsonNode *broken = json_object_get_member(o, "broken");
  m->broken = broken != NULL && JSON_NODE_HOLDS_VALUE(broken) &&
              json_node_get_value_type(broken) == G_TYPE_BOOLEAN && json_node_get_boolean(broken);
  if (!lcvm_json_int_member(o, "queried_at", &m->queried_at) || m->queried_at <= 0 ||
      (!m->broken && (m->cc == NULL || m->ppcie == NULL)))
    return NULL;
  return g_steal_pointer(&m);
}

GHashTable *
lcvm_gpu_modes_load(const char *state_dir, GError **error)
{
  g_autoptr(GHashTable) modes = lcvm_gpu_modes_new();
  lcvm_autofd int dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0 && errno == ENOENT)
    return g_steal_pointer(&modes);
  if (dirfd < 0) {
    lcvm_set_errno(error, errno, "cannot open %s", state_dir);
    return NULL;
  }
  g_autofree char *text = NULL;
  gsize len = 0;
  g_autoptr(GError) local = NULL;
  gboolean read =
      lcvm_read_file_at(dirfd, LCVM_GPU_MODES_FILE, MODES_MAX_BYTES, &text, &len, &local);
  if (!read && g_error_matches(local, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
    return g_steal_pointer(&modes);
  if (!read) {
    g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s: ", state_dir);
    return NULL;
  }
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  if (!lcvm_json_load_bounded(parser, text, (gssize)len, &local)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                "%s/%s is not JSON (%s): remove it "
                "and run 'lium-cvm lsgpu --query'",
                state_dir, LCVM_GPU_MODES_FILE, local->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  JsonObject *top = JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonObject *devices = lcvm_json_object_member(top, "devices");
  if (devices == NULL)
    return g_steal_pointer(&modes);
  JsonObjectIter it;
  const char *slot;
  JsonNode *node;
  json_object_iter_init(&it, devices);
  while (json_object_iter_next(&it, &slot, &node)) {
    LcvmGpuMode *m = entry_from_json(slot, node);
    if (m != NULL)
      g_hash_table_replace(modes, g_strdup(slot), m);
  }
  return g_steal_pointer(&modes);
}

static void
add_string(JsonBuilder *b, const char *name, const char *value)
{
  json_builder_set_member_name(b, name);
  if (value != NULL)
    json_builder_add_string_value(b, value);
  else
    json_builder_add_null_value(b);
}

gboolean
lcvm_gpu_modes_save(const char *state_dir, GHashTable *modes, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "version");
  json_builder_add_int_value(b, MODES_VERSION);
  json_builder_set_member_name(b, "devices");
  json_builder_begin_object(b);
  g_autoptr(GList) slots = g_list_sort(g_hash_table_get_keys(modes), (GCompareFunc)g_strcmp0);
  for (GList *l = slots; l != NULL; l = l->next) {
    const LcvmGpuMode *m = g_hash_table_lookup(modes, l->data);
    json_builder_set_member_name(b, m->slot);
    json_builder_begin_object(b);
    add_string(b, "kind", m->kind);
    add_string(b, "cc", m->cc);
    add_string(b, "ppcie", m->ppcie);
    json_builder_set_member_name(b, "queried_at");
    json_builder_add_int_value(b, m->queried_at);
    json_builder_set_member_name(b, "broken");
    json_builder_add_boolean_value(b, m->broken);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  json_builder_end_object(b);
  gsize len = 0;
  g_autofree char *text = lcvm_json_pretty(b, &len);
  g_autofree char *with_newline = g_strconcat(text, "\n", NULL);
  return lcvm_write_file_atomic(state_dir, LCVM_GPU_MODES_FILE, with_newline, len + 1, 0644, error);
}

char *
lcvm_gpu_mode_age(const LcvmGpuMode *m, gint64 now)
{
  gint64 s = MAX(now - m->queried_at, 0);
  if (s < 60)
    return g_strdup("now");
  if (s < 3600)
    return g_strdup_printf("%" G_GINT64_FORMAT "m", s / 60);
  if (s < 86400)
    return g_strdup_printf("%" G_GINT64_FORMAT "h", s / 3600);
  return g_strdup_printf("%" G_GINT64_FORMAT "d", s / 86400);
}

gboolean
lcvm_gpu_modes_board_ppcie(GHashTable *modes, const char *const *slots)
{
  if (slots == NULL || slots[0] == NULL)
    return FALSE;
  for (guint i = 0; slots[i] != NULL; i++) {
    const LcvmGpuMode *m = g_hash_table_lookup(modes, slots[i]);
    if (m == NULL || m->broken || g_strcmp0(m->ppcie, "on") != 0)
      return FALSE;
  }
  return TRUE;
}
