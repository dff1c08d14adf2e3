/* SPDX-License-Identifier: MIT */
/* The QMP client (see the header): newline-delimited JSON over a UNIX stream socket, read
 * with poll() against one deadline per call. Lines longer than QMP_MAX_LINE are refused. */
#include "helper-qmp.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include "lcvm-json-depth.h"
#include "lcvm-text.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define QMP_MAX_LINE (1024 * 1024)

struct _HelperQmp {
  int fd;
  guint timeout_ms;
  GString *buffer; /* bytes read past the last line */
  char *path;
};

void
helper_qmp_free(HelperQmp *qmp)
{
  if (qmp == NULL)
    return;
  lcvm_close_fdp(&qmp->fd);
  g_string_free(qmp->buffer, TRUE);
  g_free(qmp->path);
  g_free(qmp);
}

static gboolean
qmp_fail(HelperQmp *qmp, GError **error, const char *what, int err)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "QMP %s: %s%s%s", qmp->path, what,
              err ? ": " : "", err ? g_strerror(err) : "");
  return FALSE;
}

/* One line (without the newline) before deadline (monotonic µs). */
static char *
read_line(HelperQmp *qmp, gint64 deadline, GError **error)
{
  for (;;) {
    char *nl = memchr(qmp->buffer->str, '\n', qmp->buffer->len);
    if (nl != NULL) {
      char *line = g_strndup(qmp->buffer->str, nl - qmp->buffer->str);
      g_string_erase(qmp->buffer, 0, nl - qmp->buffer->str + 1);
      return line;
    }
    if (qmp->buffer->len > QMP_MAX_LINE) {
      qmp_fail(qmp, error, "reply line too long", 0);
      return NULL;
    }
    gint64 left = (deadline - g_get_monotonic_time()) / 1000;
    struct pollfd p = { qmp->fd, POLLIN, 0 };
    int ready = left > 0 ? poll(&p, 1, (int)left) : 0;
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0) {
      qmp_fail(qmp, error, ready == 0 ? "no answer in time" : "poll", ready == 0 ? 0 : errno);
      return NULL;
    }
    char chunk[4096];
    ssize_t n = read(qmp->fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      qmp_fail(qmp, error, n == 0 ? "QEMU closed the connection" : "read", n == 0 ? 0 : errno);
      return NULL;
    }
    g_string_append_len(qmp->buffer, chunk, n);
  }
}

JsonNode *
helper_qmp_parse_line(const char *line)
{
  /* QEMU runs the guest: a line from it is as untrusted as the guest. The bounded loader also
   * refuses an empty line and a second value on the line. */
  g_autoptr(JsonNode) node = lcvm_json_parse_bounded(line, -1, NULL);
  return node != NULL && JSON_NODE_HOLDS_OBJECT(node) ? g_steal_pointer(&node) : NULL;
}

HelperQmpMessage
helper_qmp_classify(JsonObject *o, const char *where, const char *command, JsonNode **ret,
                    GError **error)
{
  if (json_object_has_member(o, "return")) {
    *ret = json_node_copy(json_object_get_member(o, "return"));
    return HELPER_QMP_RETURN;
  }
  if (!json_object_has_member(o, "error"))
    return HELPER_QMP_OTHER;
  const char *desc = lcvm_json_string_member(lcvm_json_object_member(o, "error"), "desc");
  g_autofree char *shown = lcvm_text_for_message(desc != NULL ? desc : "?");
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "QMP %s: %s failed: %s", where, command, shown);
  return HELPER_QMP_ERROR;
}

const char *
helper_qmp_status_of(JsonNode *ret)
{
  return JSON_NODE_HOLDS_OBJECT(ret) ? lcvm_json_string_member(json_node_get_object(ret), "status")
                                     : NULL;
}

static JsonObject *
read_message(HelperQmp *qmp, gint64 deadline, JsonNode **root, GError **error)
{
  g_autofree char *line = read_line(qmp, deadline, error);
  if (line == NULL)
    return NULL;
  g_autoptr(JsonNode) node = helper_qmp_parse_line(line);
  if (node == NULL) {
    qmp_fail(qmp, error, "QEMU sent something that is not a JSON object", 0);
    return NULL;
  }
  *root = g_steal_pointer(&node);
  return json_node_get_object(*root);
}

static gboolean
write_all(HelperQmp *qmp, const char *text, GError **error)
{
  gsize len = strlen(text);
  while (len > 0) {
    ssize_t n = send(qmp->fd, text, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return qmp_fail(qmp, error, "write", errno);
    text += n;
    len -= (gsize)n;
  }
  return TRUE;
}

JsonNode *
helper_qmp_execute(HelperQmp *qmp, const char *command, GError **error)
{
  g_autofree char *request = g_strdup_printf("{\"execute\": \"%s\"}\n", command);
  if (!write_all(qmp, request, error))
    return NULL;
  gint64 deadline = g_get_monotonic_time() + (gint64)qmp->timeout_ms * 1000;
  for (;;) {
    g_autoptr(JsonNode) root = NULL;
    JsonObject *o = read_message(qmp, deadline, &root, error);
    if (o == NULL)
      return NULL;
    JsonNode *ret = NULL;
    switch (helper_qmp_classify(o, qmp->path, command, &ret, error)) {
    case HELPER_QMP_RETURN:
      return ret;
    case HELPER_QMP_ERROR:
      return NULL;
    case HELPER_QMP_OTHER:
      break;
    }
  }
}

static int
connect_unix(const char *path, int *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) >= sizeof addr.sun_path) {
    *err = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  lcvm_autofd int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    *err = errno;
    return -1;
  }
  return lcvm_steal_fd(&fd);
}

HelperQmp *
helper_qmp_connect(const char *socket_path, guint timeout_ms, GError **error)
{
  g_autoptr(HelperQmp) qmp = g_new0(HelperQmp, 1);
  qmp->path = g_strdup(socket_path);
  qmp->buffer = g_string_new(NULL);
  qmp->timeout_ms = timeout_ms;
  int err = 0;
  qmp->fd = connect_unix(socket_path, &err);
  if (qmp->fd < 0) {
    qmp_fail(qmp, error, "cannot connect", err);
    return NULL;
  }
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  g_autoptr(JsonNode) greeting = NULL;
  JsonObject *o = read_message(qmp, deadline, &greeting, error);
  if (o == NULL)
    return NULL;
  if (!json_object_has_member(o, "QMP")) {
    qmp_fail(qmp, error, "no QMP greeting", 0);
    return NULL;
  }
  g_autoptr(JsonNode) caps = helper_qmp_execute(qmp, "qmp_capabilities", error);
  return caps != NULL ? g_steal_pointer(&qmp) : NULL;
}

char *
helper_qmp_query_status(HelperQmp *qmp, GError **error)
{
  g_autoptr(JsonNode) ret = helper_qmp_execute(qmp, "query-status", error);
  if (ret == NULL)
    return NULL;
  const char *status = helper_qmp_status_of(ret);
  if (status == NULL)
    qmp_fail(qmp, error, "query-status answered without a status", 0);
  return g_strdup(status);
}
