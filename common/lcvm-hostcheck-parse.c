/* SPDX-License-Identifier: MIT */
/* Parsers for the host check's inputs. Each takes a buffer and never touches the
 * filesystem; malformed input yields FALSE/NULL, never a guess. */
#include "lcvm-hostcheck-parse.h"
#include "lcvm-error.h"
#include "lcvm-client-conf.h"
#include <errno.h>
#include <gio/gio.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/vm_sockets_diag.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

static gboolean
parse_guint(const char *text, guint *out)
{
  char *end = NULL;
  if (!g_ascii_isdigit(*text))
    return FALSE;
  guint64 v = g_ascii_strtoull(text, &end, 10);
  if (v > G_MAXUINT)
    return FALSE;
  *out = (guint)v;
  return TRUE;
}

gboolean
lcvm_cpuinfo_parse(const char *text, LcvmCpuInfo *out)
{
  memset(out, 0, sizeof(*out));
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *colon = strchr(lines[i], ':');
    if (lines[i][0] == '\0' && out->vendor != NULL)
      break; /* end of the first processor block */
    if (colon == NULL)
      continue;
    g_autofree char *key = g_strstrip(g_strndup(lines[i], colon - lines[i]));
    const char *value = colon + 1;
    while (*value == ' ' || *value == '\t')
      value++;
    if (g_str_equal(key, "vendor_id") && out->vendor == NULL)
      out->vendor = g_strdup(value);
    else if (g_str_equal(key, "model name") && out->model_name == NULL)
      out->model_name = g_strdup(value);
    else if (g_str_equal(key, "cpu family"))
      parse_guint(value, &out->family);
    else if (g_str_equal(key, "model"))
      out->have_model = parse_guint(value, &out->model);
    else if (g_str_equal(key, "flags") && out->flags == NULL)
      out->flags = g_strsplit_set(value, " \t", -1);
    else if (g_str_equal(key, "bugs") && out->bugs == NULL)
      out->bugs = g_strsplit_set(value, " \t", -1);
  }
  if (out->flags == NULL)
    out->flags = g_new0(char *, 1);
  if (out->bugs == NULL)
    out->bugs = g_new0(char *, 1);
  return out->vendor != NULL;
}

gboolean
lcvm_cpuinfo_has_flag(const LcvmCpuInfo *info, const char *flag)
{
  return info->flags != NULL && g_strv_contains((const char *const *)info->flags, flag);
}

void
lcvm_cpuinfo_clear(LcvmCpuInfo *info)
{
  g_clear_pointer(&info->vendor, g_free);
  g_clear_pointer(&info->model_name, g_free);
  g_clear_pointer(&info->flags, g_strfreev);
  g_clear_pointer(&info->bugs, g_strfreev);
}

char *
lcvm_cmdline_lookup(const char *cmdline, const char *key)
{
  g_auto(GStrv) words = g_strsplit_set(cmdline, " \t\n", -1);
  gsize klen = strlen(key);
  char *found = NULL;
  for (guint i = 0; words[i] != NULL; i++) {
    const char *w = words[i];
    if (g_str_equal(w, "--"))
      break;
    if (strncmp(w, key, klen) != 0 || (w[klen] != '\0' && w[klen] != '='))
      continue;
    g_free(found);
    found = g_strdup(w[klen] == '=' ? w + klen + 1 : "");
  }
  return found;
}

/* "PRI,SEQ,TS,FLAGS[,more];text" → text; NULL when the line is not a kmsg record. */
static const char *
kmsg_record_text(const char *line)
{
  const char *semi = strchr(line, ';');
  if (semi == NULL || !g_ascii_isdigit(line[0]))
    return NULL;
  guint commas = 0;
  for (const char *p = line; p < semi; p++) {
    if (*p == ',')
      commas++;
    else if (*p == ' ')
      return NULL;
  }
  return commas >= 3 ? semi + 1 : NULL;
}

GPtrArray *
lcvm_kmsg_messages(const char *data, gsize len)
{
  GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
  g_autofree char *copy = g_strndup(data, len);
  g_auto(GStrv) lines = g_strsplit(copy, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++) {
    const char *line = lines[i];
    if (line[0] == '\0' || line[0] == ' ')
      continue; /* empty, or a kmsg continuation (KEY=value) line */
    const char *text = kmsg_record_text(line);
    if (text == NULL && line[0] == '[') {
      const char *close = strchr(line, ']');
      text = close ? close + 1 : line;
      while (*text == ' ')
        text++;
    }
    g_ptr_array_add(out, g_strdup(text ? text : line));
  }
  return out;
}

/* Number after "name " in text, e.g. "build_num 882". */
static gboolean
number_after(const char *text, const char *name, guint64 *out)
{
  const char *p = strstr(text, name);
  if (p == NULL)
    return FALSE;
  p += strlen(name);
  if (!g_ascii_isdigit(*p))
    return FALSE;
  *out = g_ascii_strtoull(p, NULL, 10);
  return TRUE;
}

/* "X.Y.Z" at p. */
static gboolean
dotted_version(const char *p, guint *a, guint *b, guint *c, gboolean *have_c)
{
  char *end = NULL;
  if (!g_ascii_isdigit(*p))
    return FALSE;
  *a = (guint)g_ascii_strtoull(p, &end, 10);
  if (*end != '.' || !g_ascii_isdigit(end[1]))
    return FALSE;
  *b = (guint)g_ascii_strtoull(end + 1, &end, 10);
  *have_c = *end == '.' && g_ascii_isdigit(end[1]);
  *c = *have_c ? (guint)g_ascii_strtoull(end + 1, NULL, 10) : 0;
  return TRUE;
}

gboolean
lcvm_tdx_version_parse(const char *message, LcvmTdxVersion *out)
{
  guint64 major, minor, build;
  const char *p;
  memset(out, 0, sizeof(*out));
  if (number_after(message, "major_version ", &major) &&
      number_after(message, "minor_version ", &minor)) {
    out->major = (guint)major;
    out->minor = (guint)minor;
    if (number_after(message, "build_num ", &build))
      out->build_num = build;
    return TRUE;
  }
  if ((p = strstr(message, "TDX module ")) != NULL &&
      dotted_version(p + strlen("TDX module "), &out->major, &out->minor, &out->update,
                     &out->have_update)) {
    if (number_after(message, "build number ", &build))
      out->build_num = build;
    return TRUE;
  }
  if ((p = strstr(message, "Module version: ")) != NULL)
    return dotted_version(p + strlen("Module version: "), &out->major, &out->minor, &out->update,
                          &out->have_update);
  return FALSE;
}

/* dstack.py hands the value to subprocess as is; lium-cvm.sh's awk strips one pair of quotes,
 * and so do we, so both launchers' hosts resolve the same binary. */
char *
lcvm_client_conf_qemu_path(const char *text)
{
  g_autofree char *value = lcvm_client_conf_get(text, "qemu", "path");
  if (value == NULL)
    return NULL;
  char *v = value;
  gsize n = strlen(v);
  if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
    v[n - 1] = '\0';
    v++;
  }
  return *v ? g_strdup(v) : NULL;
}

gboolean
lcvm_kernel_release_parse(const char *release, guint *major, guint *minor)
{
  guint c;
  gboolean have_c;
  return dotted_version(release, major, minor, &c, &have_c);
}

gboolean
lcvm_vsock_dump_scan(const void *buf, gsize len, guint32 port, gboolean *listening, gboolean *done,
                     GError **error)
{
  int remaining = (int)len;
  for (const struct nlmsghdr *h = buf; NLMSG_OK(h, remaining); h = NLMSG_NEXT(h, remaining)) {
    if (h->nlmsg_type == NLMSG_DONE) {
      *done = TRUE;
      return TRUE;
    }
    if (h->nlmsg_type == NLMSG_ERROR) {
      const struct nlmsgerr *e = NLMSG_DATA(h);
      int err = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) ? -e->error : EPROTO;
      return lcvm_set_errno(error, err, "cannot list vsock sockets");
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(struct vsock_diag_msg)))
      continue;
    const struct vsock_diag_msg *m = NLMSG_DATA(h);
    if (m->vdiag_state == TCP_LISTEN && m->vdiag_src_port == port)
      *listening = TRUE;
  }
  return TRUE;
}
