/* SPDX-License-Identifier: MIT */
/* .env parsing and its typed keys (see the header). Nothing here runs a shell or expands
 * anything: a value is the text between the quotes, or the trimmed text before a comment. */
#include "lcvm-env.h"
#include "lcvm-config.h"
#include "lcvm-error.h"
#include "lcvm-json-depth.h"
#include "lcvm-pyjson.h"
#include "lcvm-text.h"
#include "lcvm-validate.h"
#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>

#define BOM "\xef\xbb\xbf"

static void
entry_free(LcvmEnvEntry *entry)
{
  g_free(entry->key);
  g_free(entry->value);
  g_free(entry);
}

void
lcvm_env_free(LcvmEnv *env)
{
  if (env == NULL)
    return;
  g_hash_table_unref(env->index);
  g_ptr_array_unref(env->entries);
  g_free(env);
}

static LcvmEnv *
env_new(void)
{
  LcvmEnv *env = g_new0(LcvmEnv, 1);
  env->entries = g_ptr_array_new_with_free_func((GDestroyNotify)entry_free);
  env->index = g_hash_table_new(g_str_hash, g_str_equal);
  return env;
}

const char *
lcvm_env_get(const LcvmEnv *env, const char *key)
{
  LcvmEnvEntry *entry = g_hash_table_lookup(env->index, key);
  return entry ? entry->value : NULL;
}

/* ---- syntax ---- */

static gboolean
is_blank(char c)
{
  return c == ' ' || c == '\t';
}

static gboolean
key_valid(const char *key)
{
  if (!g_ascii_isalpha(key[0]) && key[0] != '_')
    return FALSE;
  for (const char *p = key; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '_')
      return FALSE;
  return TRUE;
}

/* Strips a leading "export" keyword (followed by blanks) from a trimmed line. */
static char *
skip_export(char *line)
{
  if (!g_str_has_prefix(line, "export") || !is_blank(line[6]))
    return line;
  return g_strchug(line + 6);
}

static gboolean
parse_quoted(const char *raw, char **value, GError **error)
{
  const char *close = strchr(raw + 1, raw[0]);
  if (close == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "the %s quote that opens the value is never closed (a value is one line)",
                raw[0] == '"' ? "double" : "single");
    return FALSE;
  }
  const char *rest = close + 1;
  while (is_blank(*rest))
    rest++;
  if (*rest != '\0' && *rest != '#') {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "unexpected text after the closing quote: '%s' (only a # comment may follow)",
                rest);
    return FALSE;
  }
  *value = g_strndup(raw + 1, (gsize)(close - raw - 1));
  return TRUE;
}

/* An unquoted value ends at a '#' preceded by a blank (as in the shell: `a#b` is text). */
static char *
parse_unquoted(const char *after_eq)
{
  g_autofree char *copy = g_strdup(after_eq);
  for (char *p = copy; *p; p++)
    if (*p == '#' && p > copy && is_blank(p[-1])) {
      *p = '\0';
      break;
    }
  return g_strdup(g_strstrip(copy));
}

static gboolean
parse_value(const char *after_eq, char **value, GError **error)
{
  const char *raw = after_eq;
  while (is_blank(*raw))
    raw++;
  if (*raw == '"' || *raw == '\'')
    return parse_quoted(raw, value, error);
  *value = parse_unquoted(after_eq);
  return TRUE;
}

static gboolean
parse_line(LcvmEnv *env, char *line, guint lineno, GError **error)
{
  if (!g_utf8_validate(line, -1, NULL)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT, "not valid UTF-8 text");
    return FALSE;
  }
  char *text = skip_export(g_strstrip(line));
  if (*text == '\0' || *text == '#')
    return TRUE;
  char *eq = strchr(text, '=');
  if (eq == NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "'%s' is not KEY=VALUE (comments start with #)", text);
    return FALSE;
  }
  *eq = '\0';
  const char *key = g_strchomp(text);
  if (!key_valid(key)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "'%s' is not a variable name (letters, digits and '_', not starting with a "
                "digit)",
                key);
    return FALSE;
  }
  LcvmEnvEntry *previous = g_hash_table_lookup(env->index, key);
  if (previous != NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is already set on line %u (keep one of the two)", key, previous->line);
    return FALSE;
  }
  g_autofree char *value = NULL;
  g_autoptr(GError) local = NULL;
  if (!parse_value(eq + 1, &value, &local)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT, "%s: %s", key, local->message);
    return FALSE;
  }
  LcvmEnvEntry *entry = g_new0(LcvmEnvEntry, 1);
  entry->key = g_strdup(key);
  entry->value = g_steal_pointer(&value);
  entry->line = lineno;
  g_ptr_array_add(env->entries, entry);
  g_hash_table_insert(env->index, entry->key, entry);
  return TRUE;
}

/* Collects one message per problem; the caller turns them into a single error. */
static void note(GString *problems, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
note(GString *problems, const char *fmt, ...)
{
  va_list ap;
  if (problems->len > 0)
    g_string_append_c(problems, '\n');
  va_start(ap, fmt);
  g_string_append_vprintf(problems, fmt, ap);
  va_end(ap);
}

static gboolean
report(GString *problems, GError **error)
{
  if (problems->len == 0)
    return TRUE;
  g_set_error_literal(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT, problems->str);
  return FALSE;
}

LcvmEnv *
lcvm_env_parse(const char *data, gsize len, GError **error)
{
  if (memchr(data, '\0', len) != NULL) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "the file contains a NUL byte: it is not a text .env file");
    return NULL;
  }
  g_autofree char *text = g_strndup(data, len);
  const char *start = g_str_has_prefix(text, BOM) ? text + strlen(BOM) : text;
  g_auto(GStrv) lines = g_strsplit(start, "\n", -1);
  g_autoptr(LcvmEnv) env = env_new();
  g_autoptr(GString) problems = g_string_new(NULL);
  for (guint i = 0; lines[i] != NULL; i++) {
    gsize n = strlen(lines[i]);
    if (n > 0 && lines[i][n - 1] == '\r')
      lines[i][n - 1] = '\0';
    g_autoptr(GError) local = NULL;
    if (!parse_line(env, lines[i], i + 1, &local))
      note(problems, "line %u: %s", i + 1, local->message);
  }
  if (!report(problems, error))
    return NULL;
  return g_steal_pointer(&env);
}

LcvmEnv *
lcvm_env_load(const char *path, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  GStatBuf st;
  if (g_stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT, "%s is not a regular file", path);
    return NULL;
  }
  if (!g_file_get_contents(path, &data, &len, error))
    return NULL;
  if (len > LCVM_ENV_MAX_SIZE) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is larger than %d bytes: it is not a .env file", path, LCVM_ENV_MAX_SIZE);
    return NULL;
  }
  g_autoptr(GError) local = NULL;
  LcvmEnv *env = lcvm_env_parse(data, len, &local);
  if (env == NULL)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT, "%s:\n%s", path, local->message);
  return env;
}

char *
lcvm_env_user_config(const LcvmEnv *env, gsize *len, GError **error)
{
  g_autoptr(JsonObject) vars = json_object_new();
  for (guint i = 0; i < env->entries->len; i++) {
    LcvmEnvEntry *entry = env->entries->pdata[i];
    json_object_set_string_member(vars, entry->key, entry->value);
  }
  g_autoptr(JsonObject) root = json_object_new();
  json_object_set_object_member(root, "env_vars", json_object_ref(vars));
  g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), root);
  return lcvm_pyjson_dump(node, 4, len, error);
}

/* ---- typed keys ---- */

#define PORT_FORM "a port number 1-65535"
#define BOOL_FORM "true or false"
#define SIZE_FORM "a size with a T, G or M suffix (a bare number is MiB), such as 64G"

/* The value of key, or NULL when absent or empty (both mean "use the default"). */
static const char *
get_set(const LcvmEnv *env, const char *key)
{
  const char *value = lcvm_env_get(env, key);
  return value != NULL && *value != '\0' ? value : NULL;
}

static gboolean
parse_port_text(const char *text, guint16 *out)
{
  g_autofree char *copy = g_strstrip(g_strdup(text));
  guint64 v;
  if (!lcvm_parse_uint(copy, 65535, &v) || v == 0)
    return FALSE;
  *out = (guint16)v;
  return TRUE;
}

/* A required (fallback == 0) or defaulted port key. */
static guint16
port_key(const LcvmEnv *env, const char *key, guint16 fallback, GString *problems)
{
  const char *value = get_set(env, key);
  guint16 port = 0;
  if (value == NULL) {
    if (fallback == 0)
      note(problems, "%s is not set: expected %s", key, PORT_FORM);
    return fallback;
  }
  if (!parse_port_text(value, &port))
    note(problems, "%s='%s' is not valid: expected %s", key, value, PORT_FORM);
  return port;
}

static void
bool_key(const LcvmEnv *env, const char *key, gboolean *out, GString *problems)
{
  const char *value = get_set(env, key);
  *out = FALSE;
  if (value == NULL)
    return;
  if (g_ascii_strcasecmp(value, "true") == 0 || g_ascii_strcasecmp(value, "yes") == 0 ||
      g_str_equal(value, "1"))
    *out = TRUE;
  else if (g_ascii_strcasecmp(value, "false") != 0 && g_ascii_strcasecmp(value, "no") != 0 &&
           !g_str_equal(value, "0"))
    note(problems, "%s='%s' is not valid: expected %s", key, value, BOOL_FORM);
}

static void
size_key(const LcvmEnv *env, const char *key, const char *fallback, guint64 min, guint64 *out,
         GString *problems)
{
  const char *value = get_set(env, key);
  const char *text = value ? value : fallback;
  gsize n = strlen(text);
  char last = g_ascii_toupper(text[n - 1]);
  g_autofree char *sized = g_ascii_isdigit(last) ? g_strconcat(text, "M", NULL) : g_strdup(text);
  gboolean suffix_ok = g_ascii_isdigit(last) || last == 'T' || last == 'G' || last == 'M';
  if (!suffix_ok || !lcvm_parse_size(sized, out, NULL)) {
    note(problems, "%s='%s' is not valid: expected %s", key, text, SIZE_FORM);
    return;
  }
  if (*out < min)
    note(problems, "%s='%s' is too small: expected at least %" G_GUINT64_FORMAT "M", key, text,
         min >> 20);
}

static void
vcpus_key(const LcvmEnv *env, guint *out, GString *problems)
{
  const char *value = get_set(env, "CVM_VCPUS");
  guint64 v = 4;
  if (value != NULL && (!lcvm_parse_uint(value, LCVM_MANIFEST_MAX_VCPUS, &v) || v == 0))
    note(problems, "CVM_VCPUS='%s' is not valid: expected a whole number of vCPUs 1-%d", value,
         LCVM_MANIFEST_MAX_VCPUS);
  *out = (guint)v;
}

static void
gpus_key(const LcvmEnv *env, LcvmManifest *manifest, GString *problems)
{
  const char *value = get_set(env, "CVM_GPUS");
  manifest->gpu_attach = LCVM_GPU_ATTACH_LISTED;
  if (value == NULL)
    return;
  g_autofree char *trimmed = g_strstrip(g_strdup(value));
  if (g_ascii_strcasecmp(trimmed, "all") == 0) {
    manifest->gpu_attach = LCVM_GPU_ATTACH_ALL;
    return;
  }
  g_autoptr(GStrvBuilder) slots = g_strv_builder_new();
  g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  g_auto(GStrv) items = g_strsplit(value, ",", -1);
  for (guint i = 0; items[i] != NULL; i++) {
    const char *item = g_strstrip(items[i]);
    if (*item == '\0')
      continue;
    g_autofree char *slot = lcvm_slot_normalize(item, NULL);
    if (slot == NULL) {
      note(problems,
           "CVM_GPUS='%s': '%s' is not valid: expected 'all' or a comma list of "
           "PCI slots BB:DD.F or DDDD:BB:DD.F, such as 19:00.0,3b:00.0",
           value, item);
      continue;
    }
    if (!g_hash_table_add(seen, g_strdup(slot))) {
      note(problems, "CVM_GPUS='%s': %s is listed twice", value, slot);
      continue;
    }
    g_strv_builder_add(slots, slot);
  }
  if (g_hash_table_size(seen) > LCVM_MANIFEST_MAX_DEVICES)
    note(problems, "CVM_GPUS lists %u devices: at most %d are possible", g_hash_table_size(seen),
         LCVM_MANIFEST_MAX_DEVICES);
  g_strfreev(manifest->gpus);
  manifest->gpus = g_strv_builder_end(slots);
}

/* ---- ports ---- */

typedef struct {
  LcvmManifest *manifest;
  GHashTable *owners; /* host port → key that claimed it */
  GString *problems;
} PortSet;

static void
add_forward(PortSet *set, const char *key, guint16 host, guint16 guest)
{
  const char *owner = g_hash_table_lookup(set->owners, GUINT_TO_POINTER(host));
  if (owner != NULL) {
    note(set->problems,
         "host port %u is used twice: by %s and by %s (each host port forwards "
         "to one guest port)",
         host, owner, key);
    return;
  }
  g_hash_table_insert(set->owners, GUINT_TO_POINTER(host), (gpointer)key);
  lcvm_manifest_add_port(set->manifest, LCVM_PROTOCOL_TCP, LCVM_ENV_BIND_ADDRESS, host, guest);
}

#define RANGE_FORM "a comma list of ports and a-b ranges, such as 19001,19002 or 40000-40100"

static gboolean
parse_range_item(const char *item, guint16 *first, guint16 *last)
{
  const char *dash = strchr(item, '-');
  if (dash == NULL) {
    if (!parse_port_text(item, first))
      return FALSE;
    *last = *first;
    return TRUE;
  }
  g_autofree char *a = g_strndup(item, (gsize)(dash - item));
  return parse_port_text(a, first) && parse_port_text(dash + 1, last) && *first <= *last;
}

static void
range_key(PortSet *set, const char *value)
{
  g_auto(GStrv) items = g_strsplit(value, ",", -1);
  for (guint i = 0; items[i] != NULL; i++) {
    const char *item = g_strstrip(items[i]);
    guint16 first, last;
    if (*item == '\0')
      continue;
    if (!parse_range_item(item, &first, &last)) {
      note(set->problems, "RENTING_PORT_RANGE='%s': '%s' is not valid: expected %s", value, item,
           RANGE_FORM);
      continue;
    }
    if ((guint)(last - first) >= LCVM_MANIFEST_MAX_PORTS) {
      note(set->problems,
           "RENTING_PORT_RANGE='%s': '%s' has %u ports: a VM can forward at "
           "most %d (use a smaller range)",
           value, item, last - first + 1u, LCVM_MANIFEST_MAX_PORTS);
      continue;
    }
    for (guint p = first; p <= last; p++)
      add_forward(set, "RENTING_PORT_RANGE", (guint16)p, (guint16)p);
  }
}

#define MAPPINGS_FORM                                                                              \
  "a JSON list of [guest_port, host_port] pairs, such as [[46681, 56681], [46682, 56682]]"

static gboolean
mapping_port(JsonNode *node, guint16 *out)
{
  if (!JSON_NODE_HOLDS_VALUE(node) || json_node_get_value_type(node) != G_TYPE_INT64)
    return FALSE;
  gint64 v = json_node_get_int(node);
  if (v < 1 || v > 65535)
    return FALSE;
  *out = (guint16)v;
  return TRUE;
}

static void
mappings_key(PortSet *set, const char *value)
{
  /* Bounded: a .env of 150 KB of '[' overflowed json-glib's recursion. */
  g_autoptr(JsonNode) root = lcvm_json_parse_bounded(value, -1, NULL);
  g_autofree char *shown = lcvm_text_for_message(value);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY(root)) {
    note(set->problems, "RENTING_PORT_MAPPINGS='%s' is not valid: expected %s", shown,
         MAPPINGS_FORM);
    return;
  }
  JsonArray *pairs = json_node_get_array(root);
  for (guint i = 0; i < json_array_get_length(pairs); i++) {
    JsonNode *pair = json_array_get_element(pairs, i);
    JsonArray *two = JSON_NODE_HOLDS_ARRAY(pair) ? json_node_get_array(pair) : NULL;
    guint16 guest, host;
    if (two == NULL || json_array_get_length(two) != 2 ||
        !mapping_port(json_array_get_element(two, 0), &guest) ||
        !mapping_port(json_array_get_element(two, 1), &host)) {
      g_autofree char *text = json_to_string(pair, FALSE);
      g_autofree char *entry = lcvm_text_for_message(text);
      note(set->problems,
           "RENTING_PORT_MAPPINGS='%s': entry %u (%s) is not valid: expected %s "
           "with ports 1-65535",
           shown, i + 1, entry, MAPPINGS_FORM);
      continue;
    }
    add_forward(set, "RENTING_PORT_MAPPINGS", host, guest);
  }
}

static void
ports_keys(const LcvmEnv *env, LcvmManifest *manifest, GString *problems)
{
  g_autoptr(GHashTable) owners = g_hash_table_new(NULL, NULL);
  PortSet set = { manifest, owners, problems };
  guint16 ssh = port_key(env, "SSH_PORT", 0, problems);
  guint16 ssh_public = port_key(env, "SSH_PUBLIC_PORT", ssh, problems);
  guint16 external = port_key(env, "EXTERNAL_PORT", 0, problems);
  if (ssh != 0 && ssh_public != 0)
    add_forward(&set, "SSH_PUBLIC_PORT", ssh_public, ssh);
  if (external != 0)
    add_forward(&set, "EXTERNAL_PORT", external, external);

  const char *mappings = get_set(env, "RENTING_PORT_MAPPINGS");
  const char *range = get_set(env, "RENTING_PORT_RANGE");
  if (mappings != NULL && range != NULL)
    note(problems, "RENTING_PORT_MAPPINGS and RENTING_PORT_RANGE are both set: use one of them "
                   "(comment the other out)");
  else if (mappings != NULL)
    mappings_key(&set, mappings);
  else if (range != NULL)
    range_key(&set, range);
  if (manifest->ports->len > LCVM_MANIFEST_MAX_PORTS)
    note(problems, "the .env describes %u port forwards: a VM can have at most %d",
         manifest->ports->len, LCVM_MANIFEST_MAX_PORTS);
}

gboolean
lcvm_env_apply(const LcvmEnv *env, LcvmManifest *manifest, GError **error)
{
  g_autoptr(GString) problems = g_string_new(NULL);
  vcpus_key(env, &manifest->vcpus, problems);
  size_key(env, "CVM_MEMORY", "4G", LCVM_MANIFEST_MIN_MEMORY, &manifest->memory, problems);
  size_key(env, "CVM_DISK", "20G", LCVM_MANIFEST_MIN_DISK, &manifest->disk, problems);
  gpus_key(env, manifest, problems);
  bool_key(env, "CVM_HUGEPAGES", &manifest->hugepages, problems);
  bool_key(env, "CVM_PIN_NUMA", &manifest->pin_numa, problems);
  ports_keys(env, manifest, problems);
  return report(problems, error);
}
