/* SPDX-License-Identifier: MIT */
/* vm-manifest.json model, validator, reader and writer (see the header). The reader treats
 * the file as hostile: it never follows a symlink, caps the size, refuses unknown keys and
 * runs the same validator the writer runs. */
#include "lcvm-manifest.h"
#include "lcvm-fd.h"
#include "lcvm-compose.h"
#include "lcvm-error.h"
#include "lcvm-json-depth.h"
#include "lcvm-pyjson.h"
#include "lcvm-safe-io.h"
#include "lcvm-text.h"
#include "lcvm-validate.h"
#include <fcntl.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <unistd.h>

#define MIB G_GUINT64_CONSTANT(1048576)
#define MAX_SIZE_BYTES                                                                             \
  (G_GUINT64_CONSTANT(1) << 50) /* 1 PiB: far above any host, far below overflow */

static void
port_clear(LcvmPortForward *port)
{
  g_free(port->address);
}

LcvmManifest *
lcvm_manifest_new(void)
{
  LcvmManifest *m = g_new0(LcvmManifest, 1);
  m->gpus = g_new0(char *, 1);
  m->nvswitches = g_new0(char *, 1);
  m->ports = g_array_new(FALSE, TRUE, sizeof(LcvmPortForward));
  g_array_set_clear_func(m->ports, (GDestroyNotify)port_clear);
  return m;
}

void
lcvm_manifest_free(LcvmManifest *manifest)
{
  if (manifest == NULL)
    return;
  g_free(manifest->name);
  g_free(manifest->image);
  g_strfreev(manifest->gpus);
  g_strfreev(manifest->nvswitches);
  g_array_unref(manifest->ports);
  g_free(manifest->compose_hash);
  g_free(manifest->os_image_hash);
  g_free(manifest);
}

void
lcvm_manifest_add_port(LcvmManifest *manifest, LcvmProtocol protocol, const char *address,
                       guint16 host_port, guint16 guest_port)
{
  LcvmPortForward port = { protocol, g_strdup(address), host_port, guest_port };
  g_array_append_val(manifest->ports, port);
}

const char *
lcvm_protocol_name(LcvmProtocol protocol)
{
  return protocol == LCVM_PROTOCOL_UDP ? "udp" : "tcp";
}

/* ---- validation ---- */

#define MAX_MESSAGE 512

static gboolean invalid(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean
invalid(GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  /* It echoes what the file says: shown valid, without controls, of bounded length. */
  g_autofree char *shown = lcvm_text_for_message_max(msg, MAX_MESSAGE);
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT, "invalid VM definition: %s", shown);
  return FALSE;
}

/* Same rule as the image store: ≤64 characters of [A-Za-z0-9_.-], no "..". */
static gboolean
image_name_valid(const char *name)
{
  gsize len = name ? strlen(name) : 0;
  if (len == 0 || len > 64 || strstr(name, "..") != NULL)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-' && *p != '.')
      return FALSE;
  return TRUE;
}

static gboolean
ipv4_canonical(const char *address)
{
  if (address == NULL)
    return FALSE;
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string(address);
  if (inet == NULL || g_inet_address_get_family(inet) != G_SOCKET_FAMILY_IPV4)
    return FALSE;
  g_autofree char *text = g_inet_address_to_string(inet);
  return g_str_equal(text, address);
}

static gboolean
validate_size(const char *what, guint64 value, guint64 min, GError **error)
{
  if (value < min || value > MAX_SIZE_BYTES || value % MIB != 0)
    return invalid(error,
                   "%s is %" G_GUINT64_FORMAT
                   " bytes: expected a multiple of 1 MiB between %" G_GUINT64_FORMAT
                   " MiB and 1 PiB",
                   what, value, min / MIB);
  return TRUE;
}

static gboolean
validate_slots(const char *what, GStrv slots, GHashTable *seen, GError **error)
{
  if (slots == NULL)
    return invalid(error, "%s is missing", what);
  for (guint i = 0; slots[i] != NULL; i++) {
    if (!lcvm_slot_is_canonical(slots[i]))
      return invalid(error, "%s: '%s' is not a PCI slot DDDD:BB:DD.F (lower-case hex)", what,
                     slots[i]);
    if (!g_hash_table_add(seen, slots[i]))
      return invalid(error, "%s: %s appears twice", what, slots[i]);
  }
  if (g_hash_table_size(seen) > LCVM_MANIFEST_MAX_DEVICES)
    return invalid(error, "more than %d PCI devices", LCVM_MANIFEST_MAX_DEVICES);
  return TRUE;
}

static gboolean
validate_ports(const GArray *ports, GError **error)
{
  if (ports == NULL)
    return invalid(error, "ports are missing");
  if (ports->len > LCVM_MANIFEST_MAX_PORTS)
    return invalid(error, "%u port forwards: at most %d are possible", ports->len,
                   LCVM_MANIFEST_MAX_PORTS);
  g_autoptr(GHashTable) seen = g_hash_table_new(NULL, NULL);
  for (guint i = 0; i < ports->len; i++) {
    const LcvmPortForward *p = &g_array_index(ports, LcvmPortForward, i);
    if (p->protocol != LCVM_PROTOCOL_TCP && p->protocol != LCVM_PROTOCOL_UDP)
      return invalid(error, "port forward %u has no valid protocol", i + 1);
    if (!ipv4_canonical(p->address))
      return invalid(error, "port forward %u: '%s' is not an IPv4 address such as 0.0.0.0", i + 1,
                     p->address ? p->address : "");
    if (p->host_port == 0 || p->guest_port == 0)
      return invalid(error, "port forward %u: ports must be 1-65535", i + 1);
    guint key = (guint)p->protocol << 16 | p->host_port;
    if (!g_hash_table_add(seen, GUINT_TO_POINTER(key)))
      return invalid(error, "host port %s %u is forwarded twice", lcvm_protocol_name(p->protocol),
                     p->host_port);
  }
  return TRUE;
}

gboolean
lcvm_manifest_validate(const LcvmManifest *m, GError **error)
{
  g_autoptr(GError) local = NULL;
  if (!lcvm_vm_name_valid(m->name, &local))
    return invalid(error, "%s", local->message);
  if (!image_name_valid(m->image))
    return invalid(error, "image '%s' is not an image name (up to 64 of A-Z a-z 0-9 _ - .)",
                   m->image ? m->image : "");
  if (m->vcpus < 1 || m->vcpus > LCVM_MANIFEST_MAX_VCPUS)
    return invalid(error, "%u vCPUs: expected 1-%d", m->vcpus, LCVM_MANIFEST_MAX_VCPUS);
  if (!validate_size("memory", m->memory, LCVM_MANIFEST_MIN_MEMORY, error) ||
      !validate_size("disk", m->disk, LCVM_MANIFEST_MIN_DISK, error))
    return FALSE;
  if (m->gpu_attach != LCVM_GPU_ATTACH_LISTED && m->gpu_attach != LCVM_GPU_ATTACH_ALL)
    return invalid(error, "unknown GPU attach mode");
  g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
  if (!validate_slots("gpus", m->gpus, seen, error) ||
      !validate_slots("nvswitches", m->nvswitches, seen, error) || !validate_ports(m->ports, error))
    return FALSE;
  if (!lcvm_sha256_hex_valid(m->compose_hash))
    return invalid(error, "compose_hash is not 64 lower-case hex digits");
  if (!lcvm_sha256_hex_valid(m->os_image_hash))
    return invalid(error, "os_image_hash is not 64 lower-case hex digits");
  if (m->created_at_ms == 0)
    return invalid(error, "created_at_ms is missing");
  return TRUE;
}

static gboolean
port_in_range(guint16 port, const LcvmRange *range)
{
  return port >= range->min && port <= range->max;
}

static gboolean
port_reserved(guint16 port, const GArray *reserved)
{
  for (guint i = 0; reserved != NULL && i < reserved->len; i++)
    if (g_array_index(reserved, guint16, i) == port)
      return TRUE;
  return FALSE;
}

static void limit_refusal(GPtrArray *refusals, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void
limit_refusal(GPtrArray *refusals, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_ptr_array_add(refusals, g_error_new_literal(LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT, msg));
}

static void
port_refusals(guint16 port, const LcvmConfig *config, GPtrArray *refusals)
{
  if (!port_in_range(port, &config->port_range))
    limit_refusal(refusals,
                  "host port %u is outside this host's port range %" G_GUINT64_FORMAT
                  "-%" G_GUINT64_FORMAT " ([limits] port_range)",
                  port, config->port_range.min, config->port_range.max);
  else if (port_reserved(port, config->reserved_ports))
    limit_refusal(refusals, "host port %u is reserved on this host ([limits] reserved_ports)",
                  port);
  else if (port_in_range(port, &config->hostapi_port_range))
    limit_refusal(refusals,
                  "host port %u is inside the host-API port range %" G_GUINT64_FORMAT
                  "-%" G_GUINT64_FORMAT " ([limits] hostapi_port_range)",
                  port, config->hostapi_port_range.min, config->hostapi_port_range.max);
}

void
lcvm_manifest_limit_refusals(const LcvmManifest *m, const LcvmConfig *config, GPtrArray *refusals)
{
  if (config->max_vcpus != 0 && m->vcpus > config->max_vcpus)
    limit_refusal(refusals,
                  "%u vCPUs exceed this host's limit of %" G_GUINT64_FORMAT " ([limits] max_vcpus)",
                  m->vcpus, config->max_vcpus);
  if (config->max_memory != 0 && m->memory > config->max_memory)
    limit_refusal(refusals,
                  "%" G_GUINT64_FORMAT
                  " MiB of memory exceed this host's limit of %" G_GUINT64_FORMAT
                  " MiB ([limits] max_memory)",
                  m->memory / MIB, config->max_memory / MIB);
  for (guint i = 0; i < m->ports->len; i++)
    port_refusals(g_array_index(m->ports, LcvmPortForward, i).host_port, config, refusals);
}

gboolean
lcvm_manifest_check_limits(const LcvmManifest *m, const LcvmConfig *config, GError **error)
{
  g_autoptr(GPtrArray) refusals = g_ptr_array_new_with_free_func((GDestroyNotify)g_error_free);
  lcvm_manifest_limit_refusals(m, config, refusals);
  if (refusals->len == 0)
    return TRUE;
  g_propagate_error(error, g_ptr_array_steal_index(refusals, 0));
  return FALSE;
}

/* ---- reading ---- */

static const char *const known_keys[] = {
  "manifest_version", "name",          "image",         "vcpus", "memory",    "disk",
  "gpu_attach",       "gpus",          "nvswitches",    "ports", "hugepages", "pin_numa",
  "compose_hash",     "os_image_hash", "created_at_ms", NULL,
};

static const char *const port_keys[] = {
  "protocol", "address", "host_port", "guest_port", NULL,
};

static gboolean
check_keys(JsonObject *o, const char *const *keys, const char *where, GError **error)
{
  for (guint i = 0; keys[i] != NULL; i++)
    if (!json_object_has_member(o, keys[i]))
      return invalid(error, "%s: \"%s\" is missing", where, keys[i]);
  g_autoptr(GList) members = json_object_get_members(o);
  for (GList *l = members; l != NULL; l = l->next)
    if (!g_strv_contains(keys, l->data))
      return invalid(error, "%s: unknown key \"%s\"", where, (const char *)l->data);
  return TRUE;
}

static gboolean
value_of_type(JsonObject *o, const char *key, GType type)
{
  JsonNode *n = json_object_get_member(o, key);
  return n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == type;
}

static gboolean
get_string(JsonObject *o, const char *key, char **out, GError **error)
{
  if (!value_of_type(o, key, G_TYPE_STRING))
    return invalid(error, "\"%s\" must be a string", key);
  *out = g_strdup(json_object_get_string_member(o, key));
  return TRUE;
}

static gboolean
get_uint(JsonObject *o, const char *key, guint64 max, guint64 *out, GError **error)
{
  gint64 v = value_of_type(o, key, G_TYPE_INT64) ? json_object_get_int_member(o, key) : -1;
  if (v < 0 || (guint64)v > max)
    return invalid(error, "\"%s\" must be a whole number 0-%" G_GUINT64_FORMAT, key, max);
  *out = (guint64)v;
  return TRUE;
}

static gboolean
get_bool(JsonObject *o, const char *key, gboolean *out, GError **error)
{
  if (!value_of_type(o, key, G_TYPE_BOOLEAN))
    return invalid(error, "\"%s\" must be true or false", key);
  *out = json_object_get_boolean_member(o, key);
  return TRUE;
}

static gboolean
get_slots(JsonObject *o, const char *key, GStrv *out, GError **error)
{
  JsonNode *n = json_object_get_member(o, key);
  if (!JSON_NODE_HOLDS_ARRAY(n))
    return invalid(error, "\"%s\" must be a list of PCI slots", key);
  JsonArray *a = json_node_get_array(n);
  guint len = json_array_get_length(a);
  if (len > LCVM_MANIFEST_MAX_DEVICES)
    return invalid(error, "\"%s\" lists more than %d devices", key, LCVM_MANIFEST_MAX_DEVICES);
  g_auto(GStrv) slots = g_new0(char *, len + 1);
  for (guint i = 0; i < len; i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_STRING)
      return invalid(error, "\"%s\" must be a list of PCI slots", key);
    slots[i] = g_strdup(json_node_get_string(e));
  }
  g_strfreev(*out);
  *out = g_steal_pointer(&slots);
  return TRUE;
}

static gboolean
get_port(JsonObject *o, guint i, LcvmManifest *m, GError **error)
{
  g_autofree char *where = g_strdup_printf("port forward %u", i + 1);
  g_autofree char *protocol = NULL;
  g_autofree char *address = NULL;
  guint64 host, guest;
  if (!check_keys(o, port_keys, where, error) || !get_string(o, "protocol", &protocol, error) ||
      !get_string(o, "address", &address, error) ||
      !get_uint(o, "host_port", 65535, &host, error) ||
      !get_uint(o, "guest_port", 65535, &guest, error))
    return FALSE;
  if (!g_str_equal(protocol, "tcp") && !g_str_equal(protocol, "udp"))
    return invalid(error, "%s: protocol '%s' is not tcp or udp", where, protocol);
  lcvm_manifest_add_port(m, g_str_equal(protocol, "udp") ? LCVM_PROTOCOL_UDP : LCVM_PROTOCOL_TCP,
                         address, (guint16)host, (guint16)guest);
  return TRUE;
}

static gboolean
get_ports(JsonObject *o, LcvmManifest *m, GError **error)
{
  JsonNode *n = json_object_get_member(o, "ports");
  if (!JSON_NODE_HOLDS_ARRAY(n))
    return invalid(error, "\"ports\" must be a list");
  JsonArray *a = json_node_get_array(n);
  if (json_array_get_length(a) > LCVM_MANIFEST_MAX_PORTS)
    return invalid(error, "more than %d port forwards", LCVM_MANIFEST_MAX_PORTS);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *e = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(e))
      return invalid(error, "port forward %u must be an object", i + 1);
    if (!get_port(json_node_get_object(e), i, m, error))
      return FALSE;
  }
  return TRUE;
}

static gboolean
get_attach(JsonObject *o, LcvmManifest *m, GError **error)
{
  g_autofree char *attach = NULL;
  if (!get_string(o, "gpu_attach", &attach, error))
    return FALSE;
  if (g_str_equal(attach, "all"))
    m->gpu_attach = LCVM_GPU_ATTACH_ALL;
  else if (g_str_equal(attach, "listed"))
    m->gpu_attach = LCVM_GPU_ATTACH_LISTED;
  else
    return invalid(error, "gpu_attach '%s' is not 'listed' or 'all'", attach);
  return TRUE;
}

static gboolean
fill_from_object(JsonObject *o, LcvmManifest *m, GError **error)
{
  guint64 version = 0, vcpus = 0;
  if (!check_keys(o, known_keys, LCVM_MANIFEST_FILE, error) ||
      !get_uint(o, "manifest_version", G_MAXUINT32, &version, error))
    return FALSE;
  if (version != LCVM_MANIFEST_VERSION)
    return invalid(error,
                   "manifest_version %" G_GUINT64_FORMAT " is not %d (written by another "
                   "lium-cvm version: recreate the VM with `lium-cvm new`)",
                   version, LCVM_MANIFEST_VERSION);
  if (!get_string(o, "name", &m->name, error) || !get_string(o, "image", &m->image, error) ||
      !get_uint(o, "vcpus", LCVM_MANIFEST_MAX_VCPUS, &vcpus, error) ||
      !get_uint(o, "memory", G_MAXINT64, &m->memory, error) ||
      !get_uint(o, "disk", G_MAXINT64, &m->disk, error) || !get_attach(o, m, error) ||
      !get_slots(o, "gpus", &m->gpus, error) ||
      !get_slots(o, "nvswitches", &m->nvswitches, error) || !get_ports(o, m, error) ||
      !get_bool(o, "hugepages", &m->hugepages, error) ||
      !get_bool(o, "pin_numa", &m->pin_numa, error) ||
      !get_string(o, "compose_hash", &m->compose_hash, error) ||
      !get_string(o, "os_image_hash", &m->os_image_hash, error) ||
      !get_uint(o, "created_at_ms", G_MAXINT64, &m->created_at_ms, error))
    return FALSE;
  m->vcpus = (guint)vcpus;
  return TRUE;
}

LcvmManifest *
lcvm_manifest_parse(const char *data, gsize len, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) local = NULL;
  if (!lcvm_json_load_bounded(parser, data, (gssize)len, &local)) {
    invalid(error, "%s is not JSON: %s", LCVM_MANIFEST_FILE, local->message);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    invalid(error, "%s is not a JSON object", LCVM_MANIFEST_FILE);
    return NULL;
  }
  g_autoptr(LcvmManifest) m = lcvm_manifest_new();
  if (!fill_from_object(json_node_get_object(root), m, error) || !lcvm_manifest_validate(m, error))
    return NULL;
  return g_steal_pointer(&m);
}

LcvmManifest *
lcvm_manifest_load_at(int dirfd, GError **error)
{
  g_autofree char *data = NULL;
  gsize len = 0;
  /* Single-link, like every other definition file: a hard link may name a file its
   * writer could not read, whose bytes root would then echo in its errors. */
  if (!lcvm_read_untrusted_file_at(dirfd, LCVM_MANIFEST_FILE, LCVM_MANIFEST_MAX_SIZE, &data, &len,
                                   error))
    return NULL;
  return lcvm_manifest_parse(data, len, error);
}

LcvmManifest *
lcvm_manifest_load_vm(int vms_dirfd, const char *name, int *vm_dirfd, GError **error)
{
  if (!lcvm_vm_name_valid(name, error))
    return NULL;
  lcvm_autofd int fd = lcvm_open_dir_at(vms_dirfd, name, error);
  if (fd < 0)
    return NULL;
  g_autoptr(LcvmManifest) m = lcvm_manifest_load_at(fd, error);
  if (m != NULL && !g_str_equal(m->name, name)) {
    invalid(error, "%s in %s names the VM '%s'", LCVM_MANIFEST_FILE, name, m->name);
    g_clear_pointer(&m, lcvm_manifest_free);
  }
  if (m != NULL && vm_dirfd != NULL)
    *vm_dirfd = lcvm_steal_fd(&fd);
  return g_steal_pointer(&m);
}

/* ---- writing ---- */

static JsonArray *
slots_array(GStrv slots)
{
  JsonArray *a = json_array_new();
  for (guint i = 0; slots[i] != NULL; i++)
    json_array_add_string_element(a, slots[i]);
  return a;
}

static JsonArray *
ports_array(const GArray *ports)
{
  JsonArray *a = json_array_new();
  for (guint i = 0; i < ports->len; i++) {
    const LcvmPortForward *p = &g_array_index(ports, LcvmPortForward, i);
    JsonObject *o = json_object_new();
    json_object_set_string_member(o, "protocol", lcvm_protocol_name(p->protocol));
    json_object_set_string_member(o, "address", p->address);
    json_object_set_int_member(o, "host_port", p->host_port);
    json_object_set_int_member(o, "guest_port", p->guest_port);
    json_array_add_object_element(a, o);
  }
  return a;
}

char *
lcvm_manifest_to_json(const LcvmManifest *m, gsize *len, GError **error)
{
  if (!lcvm_manifest_validate(m, error))
    return NULL;
  g_autoptr(JsonObject) o = json_object_new();
  json_object_set_int_member(o, "manifest_version", LCVM_MANIFEST_VERSION);
  json_object_set_string_member(o, "name", m->name);
  json_object_set_string_member(o, "image", m->image);
  json_object_set_int_member(o, "vcpus", m->vcpus);
  json_object_set_int_member(o, "memory", (gint64)m->memory);
  json_object_set_int_member(o, "disk", (gint64)m->disk);
  json_object_set_string_member(o, "gpu_attach",
                                m->gpu_attach == LCVM_GPU_ATTACH_ALL ? "all" : "listed");
  json_object_set_array_member(o, "gpus", slots_array(m->gpus));
  json_object_set_array_member(o, "nvswitches", slots_array(m->nvswitches));
  json_object_set_array_member(o, "ports", ports_array(m->ports));
  json_object_set_boolean_member(o, "hugepages", m->hugepages);
  json_object_set_boolean_member(o, "pin_numa", m->pin_numa);
  json_object_set_string_member(o, "compose_hash", m->compose_hash);
  json_object_set_string_member(o, "os_image_hash", m->os_image_hash);
  json_object_set_int_member(o, "created_at_ms", (gint64)m->created_at_ms);
  g_autoptr(JsonNode) node = json_node_init_object(json_node_alloc(), o);
  return lcvm_pyjson_dump(node, 4, len, error);
}

gboolean
lcvm_manifest_write_at(int dirfd, const LcvmManifest *manifest, mode_t mode, GError **error)
{
  gsize len = 0;
  g_autofree char *data = lcvm_manifest_to_json(manifest, &len, error);
  if (data == NULL)
    return FALSE;
  return lcvm_write_file_atomic_at(dirfd, LCVM_MANIFEST_FILE, data, len, mode, error);
}
