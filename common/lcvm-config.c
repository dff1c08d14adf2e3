/* SPDX-License-Identifier: MIT */
/* Table-driven parser for lium-cvm.conf. Defaults are written as text and go through the
 * same parsers as the file, so a default can never be a value the file could not hold. */
#include "lcvm-config.h"
#include "config.h"
#include <errno.h>
#include <gio/gio.h>
#include <stddef.h>
#include <string.h>

typedef enum {
  KEY_PATH, /* absolute path, no "..", may be empty only where noted */
  KEY_OPTPATH,
  KEY_STRING,
  KEY_BOOL,
  KEY_UINT,
  KEY_SIZE,
  KEY_RANGE,
  KEY_PORTS,
  KEY_ACCEL,
  KEY_ADDRESS,
  KEY_CIDRS, /* comma-separated CIDR prefixes, kept in canonical form */
} KeyType;

typedef struct {
  const char *group;
  const char *key;
  KeyType type;
  size_t offset;
  const char *def;
} KeySpec;

#define F(field) offsetof(LcvmConfig, field)

static const KeySpec key_specs[] = {
  { "paths", "state_dir", KEY_PATH, F(state_dir), "/var/lib/lium-cvm" },
  { "paths", "runtime_dir", KEY_PATH, F(runtime_dir), "/run/lium-cvm" },
  { "paths", "hugepages_dir", KEY_PATH, F(hugepages_dir), "/dev/hugepages" },
  { "paths", "sysfs_root", KEY_PATH, F(sysfs_root), "/sys" },
  { "paths", "dev_root", KEY_PATH, F(dev_root), "/dev" },
  { "paths", "proc_root", KEY_PATH, F(proc_root), "/proc" },
  { "paths", "modules_load_dir", KEY_PATH, F(modules_load_dir), "/etc/modules-load.d" },
  { "paths", "modprobe_dir", KEY_PATH, F(modprobe_dir), "/etc/modprobe.d" },
  { "paths", "dstack_client_conf", KEY_OPTPATH, F(dstack_client_conf), "/etc/dstack/client.conf" },
  { "paths", "qcnl_conf", KEY_OPTPATH, F(qcnl_conf), "/etc/sgx_default_qcnl.conf" },
  { "qemu", "path", KEY_OPTPATH, F(qemu_path), "" },
  { "qemu", "uid_range", KEY_RANGE, F(uid_range), "61000-61999" },
  { "qemu", "allow_no_tee", KEY_BOOL, F(allow_no_tee), "false" },
  { "qemu", "accel", KEY_ACCEL, F(accel), "kvm" },
  { "limits", "max_vcpus", KEY_UINT, F(max_vcpus), "0" },
  { "limits", "max_memory", KEY_SIZE, F(max_memory), "0" },
  { "limits", "port_range", KEY_RANGE, F(port_range), "1024-65535" },
  { "limits", "hostapi_port_range", KEY_RANGE, F(hostapi_port_range), "40000-40999" },
  { "limits", "cid_range", KEY_RANGE, F(cid_range), "1000-1999" },
  { "limits", "reserved_ports", KEY_PORTS, F(reserved_ports), "3443,8081" },
  { "tools", "gpu_admin_tools", KEY_OPTPATH, F(gpu_admin_tools),
    "/opt/gpu-admin-tools/nvidia_gpu_tools.py" },
  { "tools", "gpu_admin_tools_timeout", KEY_UINT, F(gpu_admin_tools_timeout), "120" },
  { "tools", "docker", KEY_OPTPATH, F(docker), "/usr/bin/docker" },
  { "tools", "taskset", KEY_OPTPATH, F(taskset), "/usr/bin/taskset" },
  { "tools", "qemu_img", KEY_OPTPATH, F(qemu_img), "/usr/bin/qemu-img" },
  { "tools", "journalctl", KEY_OPTPATH, F(journalctl), "/usr/bin/journalctl" },
  { "tools", "mpa_manage", KEY_OPTPATH, F(mpa_manage), "/opt/intel/sgx-ra-service/mpa_manage" },
  { "tools", "hostapi", KEY_PATH, F(hostapi), LCVM_LIBEXECDIR "/lium-cvm-hostapi" },
  { "gpu", "sanitize_on_attach", KEY_BOOL, F(sanitize_on_attach), "true" },
  { "key-provider", "address", KEY_ADDRESS, F(key_provider_address), "127.0.0.1:3443" },
  { "key-provider", "compose_dir", KEY_PATH, F(key_provider_compose_dir),
    "/etc/lium-cvm/key-provider" },
  { "images", "default_image", KEY_STRING, F(default_image), "dstack-nvidia-0.5.11" },
  { "images", "url", KEY_STRING, F(image_url), "" },
  { "images", "sha256", KEY_STRING, F(image_sha256), "" },
  { "images", "connect_timeout", KEY_UINT, F(download_connect_timeout), "30" },
  { "images", "low_speed_limit", KEY_UINT, F(download_low_speed_limit), "1024" },
  { "images", "low_speed_time", KEY_UINT, F(download_low_speed_time), "60" },
  { "images", "retries", KEY_UINT, F(download_retries), "5" },
  { "attestation", "known_good", KEY_OPTPATH, F(known_good), "" },
  { "attestation", "enforce", KEY_BOOL, F(attestation_enforce), "false" },
  { "attestation", "qgsd_unit", KEY_STRING, F(qgsd_unit), "qgsd" },
  { "inventory", "lium_registry", KEY_OPTPATH, F(lium_registry), "/var/lib/lium-cvm/vm-dirs" },
  { "inventory", "sweep_roots", KEY_STRING, F(sweep_roots), "/home /root /opt /srv /mnt /data" },
  { "network", "guest_allow", KEY_CIDRS, F(guest_allow), "" },
  { "helper", "idle_timeout", KEY_UINT, F(idle_timeout), "60" },
  { "helper", "bind_timeout", KEY_UINT, F(bind_timeout), "30" },
  { "testing", "guest_agent_socket_dir", KEY_OPTPATH, F(guest_agent_socket_dir), "" },
};

gboolean
lcvm_parse_uint(const char *text, guint64 max, guint64 *out)
{
  char *end = NULL;
  if (text == NULL || !g_ascii_isdigit(text[0]))
    return FALSE;
  errno = 0;
  guint64 v = g_ascii_strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return FALSE;
  *out = v;
  return TRUE;
}

gboolean
lcvm_parse_size(const char *text, guint64 *out, GError **error)
{
  g_autofree char *num = g_strdup(text);
  gsize len = strlen(num);
  guint shift = 0;
  if (len > 0) {
    switch (g_ascii_toupper(num[len - 1])) {
    case 'K':
      shift = 10;
      break;
    case 'M':
      shift = 20;
      break;
    case 'G':
      shift = 30;
      break;
    case 'T':
      shift = 40;
      break;
    default:
      break;
    }
    if (shift != 0)
      num[len - 1] = '\0';
  }
  guint64 v;
  if (!lcvm_parse_uint(num, G_MAXUINT64 >> shift, &v)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "'%s' is not a size (a whole number with an optional K, M, G or T suffix)", text);
    return FALSE;
  }
  *out = v << shift;
  return TRUE;
}

static gboolean
parse_range(const char *text, guint64 limit, LcvmRange *out)
{
  g_auto(GStrv) parts = g_strsplit(text, "-", -1);
  if (g_strv_length(parts) != 2)
    return FALSE;
  if (!lcvm_parse_uint(g_strstrip(parts[0]), limit, &out->min) ||
      !lcvm_parse_uint(g_strstrip(parts[1]), limit, &out->max))
    return FALSE;
  return out->min <= out->max;
}

static gboolean
parse_ports(const char *text, GArray **out)
{
  g_autoptr(GArray) ports = g_array_new(FALSE, FALSE, sizeof(guint16));
  g_auto(GStrv) parts = g_strsplit(text, ",", -1);
  for (guint i = 0; parts[i] != NULL; i++) {
    guint64 v;
    char *p = g_strstrip(parts[i]);
    if (*p == '\0')
      continue;
    if (!lcvm_parse_uint(p, 65535, &v) || v == 0)
      return FALSE;
    guint16 port = (guint16)v;
    g_array_append_val(ports, port);
  }
  *out = g_steal_pointer(&ports);
  return TRUE;
}

/* Each element an address or ADDRESS/LENGTH without host bits past the prefix; /0 would
 * switch the loopback guard off and is refused. */
static gboolean
parse_cidrs(const char *text, GStrv *out)
{
  g_autoptr(GPtrArray) cidrs = g_ptr_array_new_with_free_func(g_free);
  g_auto(GStrv) parts = g_strsplit(text, ",", -1);
  for (guint i = 0; parts[i] != NULL; i++) {
    char *p = g_strstrip(parts[i]);
    if (*p == '\0')
      continue;
    g_auto(GStrv) halves = g_strsplit(p, "/", -1);
    guint n = g_strv_length(halves);
    g_autoptr(GInetAddress) addr = n <= 2 ? g_inet_address_new_from_string(halves[0]) : NULL;
    if (addr == NULL)
      return FALSE;
    guint64 bits = g_inet_address_get_native_size(addr) * 8, length = bits;
    if (n == 2 && (!lcvm_parse_uint(halves[1], bits, &length) || strlen(halves[1]) > 3))
      return FALSE;
    /* GInetAddressMask refuses host bits set past the prefix. */
    g_autoptr(GInetAddressMask) mask =
        length > 0 ? g_inet_address_mask_new(addr, (guint)length, NULL) : NULL;
    if (mask == NULL)
      return FALSE;
    g_autofree char *network = g_inet_address_to_string(addr);
    g_ptr_array_add(cidrs, g_strdup_printf("%s/%u", network, (guint)length));
  }
  g_ptr_array_add(cidrs, NULL);
  *out = (GStrv)g_ptr_array_steal(cidrs, NULL);
  return TRUE;
}

static gboolean
valid_path(const char *text, gboolean may_be_empty)
{
  if (*text == '\0')
    return may_be_empty;
  if (text[0] != '/')
    return FALSE;
  g_auto(GStrv) parts = g_strsplit(text, "/", -1);
  for (guint i = 0; parts[i] != NULL; i++)
    if (g_str_equal(parts[i], ".."))
      return FALSE;
  return TRUE;
}

static gboolean
valid_address(const char *text)
{
  const char *colon = strrchr(text, ':');
  guint64 port;
  if (colon == NULL || colon == text)
    return FALSE;
  if (!lcvm_parse_uint(colon + 1, 65535, &port) || port == 0)
    return FALSE;
  g_autofree char *host = g_strndup(text, colon - text);
  return g_hostname_is_ip_address(host);
}

static const char *
expected_form(KeyType type)
{
  switch (type) {
  case KEY_PATH:
    return "an absolute path without '..'";
  case KEY_OPTPATH:
    return "an absolute path without '..', or empty";
  case KEY_STRING:
    return "text";
  case KEY_BOOL:
    return "true or false";
  case KEY_UINT:
    return "a whole number";
  case KEY_SIZE:
    return "a size such as 512M or 64G (0: no limit)";
  case KEY_RANGE:
    return "a range MIN-MAX";
  case KEY_PORTS:
    return "a comma-separated list of ports 1-65535";
  case KEY_ACCEL:
    return "kvm or tcg";
  case KEY_ADDRESS:
    return "IP:PORT, such as 127.0.0.1:3443";
  case KEY_CIDRS:
    return "a comma-separated list of addresses or prefixes such as 192.168.1.53/32 or "
           "2001:db8::/64 (no host bits past the prefix, no /0)";
  }
  return "?";
}

static gboolean
set_value(LcvmConfig *config, const KeySpec *spec, const char *text)
{
  char *base = (char *)config + spec->offset;
  switch (spec->type) {
  case KEY_PATH:
  case KEY_OPTPATH:
    if (!valid_path(text, spec->type == KEY_OPTPATH))
      return FALSE;
    break;
  case KEY_STRING:
    break;
  case KEY_ACCEL:
    if (!g_str_equal(text, "kvm") && !g_str_equal(text, "tcg"))
      return FALSE;
    break;
  case KEY_ADDRESS:
    if (!valid_address(text))
      return FALSE;
    break;
  case KEY_BOOL:
    if (g_str_equal(text, "true"))
      *(gboolean *)base = TRUE;
    else if (g_str_equal(text, "false"))
      *(gboolean *)base = FALSE;
    else
      return FALSE;
    return TRUE;
  case KEY_UINT:
    return lcvm_parse_uint(text, G_MAXUINT32, (guint64 *)base);
  case KEY_SIZE:
    return lcvm_parse_size(text, (guint64 *)base, NULL);
  case KEY_RANGE:
    return parse_range(text, G_MAXUINT32, (LcvmRange *)base);
  case KEY_PORTS: {
    GArray *ports = NULL;
    if (!parse_ports(text, &ports))
      return FALSE;
    g_clear_pointer((GArray **)base, g_array_unref);
    *(GArray **)base = ports;
    return TRUE;
  }
  case KEY_CIDRS: {
    GStrv cidrs = NULL;
    if (!parse_cidrs(text, &cidrs))
      return FALSE;
    g_strfreev(*(GStrv *)base);
    *(GStrv *)base = cidrs;
    return TRUE;
  }
  }
  g_free(*(char **)base);
  *(char **)base = g_strdup(text);
  return TRUE;
}

LcvmConfig *
lcvm_config_new_default(void)
{
  LcvmConfig *config = g_new0(LcvmConfig, 1);
  for (gsize i = 0; i < G_N_ELEMENTS(key_specs); i++) {
    gboolean ok = set_value(config, &key_specs[i], key_specs[i].def);
    g_assert(ok);
  }
  return config;
}

static const KeySpec *
find_spec(const char *group, const char *key)
{
  for (gsize i = 0; i < G_N_ELEMENTS(key_specs); i++)
    if (g_str_equal(key_specs[i].group, group) && g_str_equal(key_specs[i].key, key))
      return &key_specs[i];
  return NULL;
}

static gboolean
group_known(const char *group)
{
  for (gsize i = 0; i < G_N_ELEMENTS(key_specs); i++)
    if (g_str_equal(key_specs[i].group, group))
      return TRUE;
  return FALSE;
}

static LcvmConfig *
config_from_keyfile(GKeyFile *kf, const char *origin, GError **error)
{
  g_autoptr(LcvmConfig) config = lcvm_config_new_default();
  g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
  for (guint g = 0; groups[g] != NULL; g++) {
    if (!group_known(groups[g])) {
      g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_GROUP_NOT_FOUND,
                  "%s: unknown group [%s]; known groups are paths, qemu, limits, tools, "
                  "key-provider, images, gpu, attestation, inventory, network, helper",
                  origin, groups[g]);
      return NULL;
    }
    g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);
    for (guint k = 0; keys[k] != NULL; k++) {
      const KeySpec *spec = find_spec(groups[g], keys[k]);
      if (spec == NULL) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_KEY_NOT_FOUND,
                    "%s: unknown key %s.%s; remove it or check its spelling", origin, groups[g],
                    keys[k]);
        return NULL;
      }
      g_autofree char *raw = g_key_file_get_value(kf, groups[g], keys[k], NULL);
      g_autofree char *value = g_strstrip(g_strdup(raw));
      if (!set_value(config, spec, value)) {
        g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                    "%s: %s.%s = '%s' is not valid: expected %s", origin, groups[g], keys[k], value,
                    expected_form(spec->type));
        return NULL;
      }
    }
  }
  if (config->allow_no_tee == FALSE && g_str_equal(config->accel, "tcg")) {
    g_set_error(error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                "%s: qemu.accel = tcg needs qemu.allow_no_tee = true (TCG cannot run a TDX guest)",
                origin);
    return NULL;
  }
  return g_steal_pointer(&config);
}

LcvmConfig *
lcvm_config_load_data(const char *data, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_data(kf, data, -1, G_KEY_FILE_NONE, error))
    return NULL;
  return config_from_keyfile(kf, "configuration", error);
}

LcvmConfig *
lcvm_config_load(const char *path, GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_autoptr(GError) local = NULL;
  if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &local)) {
    g_set_error(error, local->domain, local->code, "cannot read configuration %s: %s", path,
                local->message);
    return NULL;
  }
  return config_from_keyfile(kf, path, error);
}

void
lcvm_config_free(LcvmConfig *config)
{
  if (config == NULL)
    return;
  for (gsize i = 0; i < G_N_ELEMENTS(key_specs); i++) {
    char *base = (char *)config + key_specs[i].offset;
    switch (key_specs[i].type) {
    case KEY_PATH:
    case KEY_OPTPATH:
    case KEY_STRING:
    case KEY_ACCEL:
    case KEY_ADDRESS:
      g_free(*(char **)base);
      break;
    case KEY_PORTS:
      g_clear_pointer((GArray **)base, g_array_unref);
      break;
    case KEY_CIDRS:
      g_strfreev(*(GStrv *)base);
      break;
    default:
      break;
    }
  }
  g_free(config);
}

char *
lcvm_config_path(const char *root, const char *rel)
{
  g_assert(rel[0] != '/');
  return g_build_filename(root, rel, NULL);
}

static char *
format_value(const LcvmConfig *config, const KeySpec *spec)
{
  const char *base = (const char *)config + spec->offset;
  switch (spec->type) {
  case KEY_BOOL:
    return g_strdup(*(const gboolean *)base ? "true" : "false");
  case KEY_UINT:
  case KEY_SIZE:
    return g_strdup_printf("%" G_GUINT64_FORMAT, *(const guint64 *)base);
  case KEY_RANGE: {
    const LcvmRange *r = (const LcvmRange *)base;
    return g_strdup_printf("%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT, r->min, r->max);
  }
  case KEY_PORTS: {
    const GArray *ports = *(GArray *const *)base;
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < ports->len; i++)
      g_string_append_printf(s, "%s%u", i ? "," : "", g_array_index(ports, guint16, i));
    return g_string_free(s, FALSE);
  }
  case KEY_CIDRS:
    return g_strjoinv(",", *(GStrv const *)base);
  default:
    return g_strdup(*(char *const *)base);
  }
}

GHashTable *
lcvm_config_summary(const LcvmConfig *config)
{
  GHashTable *t = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  for (gsize i = 0; i < G_N_ELEMENTS(key_specs); i++)
    g_hash_table_insert(t, g_strdup_printf("%s.%s", key_specs[i].group, key_specs[i].key),
                        format_value(config, &key_specs[i]));
  return t;
}
