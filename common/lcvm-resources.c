/* SPDX-License-Identifier: MIT */
/* Host resource probes (see the header). */
#include "lcvm-resources.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "lcvm-sysfs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define KERNEL_LIST_MAX (1u << 20)

static gboolean
parse_list_value(const char **p, guint *out)
{
  guint64 v = 0;
  const char *start = *p;
  while (g_ascii_isdigit(**p) && *p - start < 8)
    v = v * 10 + (guint64)(*(*p)++ - '0');
  if (*p == start || g_ascii_isdigit(**p) || v >= KERNEL_LIST_MAX)
    return FALSE;
  *out = (guint)v;
  return TRUE;
}

gboolean
lcvm_kernel_list_parse(const char *text, guint *count, GArray *values)
{
  const char *p = text;
  guint n = 0;
  do {
    guint lo = 0, hi = 0;
    if (!parse_list_value(&p, &lo))
      return FALSE;
    hi = lo;
    if (*p == '-' && (p++, !parse_list_value(&p, &hi) || hi < lo))
      return FALSE;
    n += hi - lo + 1;
    if (n > KERNEL_LIST_MAX)
      return FALSE;
    for (guint v = lo; values != NULL && v <= hi; v++)
      g_array_append_val(values, v);
  } while (*p == ',' && *p++ == ',');
  if (*p == '\n')
    p++;
  if (*p != '\0')
    return FALSE;
  *count = n;
  return TRUE;
}

static char *
read_host_fact(const char *sysfs_root, const char *rel, GError **error)
{
  g_autofree char *path = g_build_filename(sysfs_root, rel, NULL);
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *name = g_path_get_basename(path);
  g_autoptr(GError) local = NULL;
  char *text = lcvm_sysfs_read(dir, name, &local); /* the one sysfs layer: bounded, no link */
  if (text != NULL)
    return text;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot read %s (%s); check [paths] sysfs_root",
              path, local->message);
  return NULL;
}

gboolean
lcvm_host_cpu_count(const char *sysfs_root, guint *count, GError **error)
{
  g_autofree char *text = read_host_fact(sysfs_root, "devices/system/cpu/online", error);
  if (text == NULL)
    return FALSE;
  if (lcvm_kernel_list_parse(text, count, NULL) && *count > 0)
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "%s/devices/system/cpu/online is not a CPU list: %s", sysfs_root, g_strstrip(text));
  return FALSE;
}

/* "Node 0 MemTotal:       1056587456 kB" anywhere in a node's meminfo. */
static gboolean
node_mem_total(const char *text, guint64 *bytes)
{
  const char *at = strstr(text, " MemTotal:");
  if (at == NULL)
    return FALSE;
  const char *p = at + strlen(" MemTotal:");
  while (*p == ' ')
    p++;
  char *end = NULL;
  if (!g_ascii_isdigit(*p))
    return FALSE;
  guint64 kib = g_ascii_strtoull(p, &end, 10);
  if (!g_str_has_prefix(end, " kB") || kib > G_MAXUINT64 / 1024 / 4096)
    return FALSE;
  *bytes = kib * 1024;
  return TRUE;
}

gboolean
lcvm_host_memory(const char *sysfs_root, guint64 *bytes, GError **error)
{
  g_autofree char *online = read_host_fact(sysfs_root, "devices/system/node/online", error);
  g_autoptr(GArray) nodes = g_array_new(FALSE, FALSE, sizeof(guint));
  guint n = 0;
  if (online == NULL)
    return FALSE;
  if (!lcvm_kernel_list_parse(online, &n, nodes) || n > 4096) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
                "%s/devices/system/node/online is not a node list: %s", sysfs_root,
                g_strstrip(online));
    return FALSE;
  }
  *bytes = 0;
  for (guint i = 0; i < nodes->len; i++) {
    g_autofree char *rel =
        g_strdup_printf("devices/system/node/node%u/meminfo", g_array_index(nodes, guint, i));
    g_autofree char *text = read_host_fact(sysfs_root, rel, error);
    guint64 node_bytes = 0;
    if (text == NULL)
      return FALSE;
    if (!node_mem_total(text, &node_bytes)) {
      g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "%s/%s has no MemTotal line", sysfs_root,
                  rel);
      return FALSE;
    }
    *bytes += node_bytes;
  }
  return TRUE;
}

static gboolean
port_error(GError **error, int err, const LcvmPortForward *f)
{
  const char *proto = lcvm_protocol_name(f->protocol);
  if (err == EADDRINUSE)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_BUSY,
                "%s port %u is in use on %s (another VM or service holds it; `ss -lntup` shows "
                "which): stop it or forward another host port",
                proto, f->host_port, f->address);
  else if (err == EADDRNOTAVAIL)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_INVALID_ARGUMENT,
                "%s is not an address of this host, so %s port %u cannot be forwarded from it: "
                "use 0.0.0.0, 127.0.0.1 or one of the host's addresses",
                f->address, proto, f->host_port);
  else
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot bind %s port %u on %s: %s", proto,
                f->host_port, f->address, g_strerror(err));
  return FALSE;
}

gboolean
lcvm_port_check_free(const LcvmPortForward *forward, GError **error)
{
  struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(forward->host_port) };
  if (inet_pton(AF_INET, forward->address, &sa.sin_addr) != 1)
    return port_error(error, EADDRNOTAVAIL, forward);
  gboolean tcp = forward->protocol == LCVM_PROTOCOL_TCP;
  lcvm_autofd int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return port_error(error, errno, forward);
  int one = 1;
  int err = 0;
  if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    err = errno;
  if (err == 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    err = errno;
  return err == 0 ? TRUE : port_error(error, err, forward);
}
