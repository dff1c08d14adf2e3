/* The event file follower (see the header). The file is opened once, without following a
 * symlink, in the root-only runtime_dir/NAME; the inotify watch is put on that open file (its
 * /proc/self/fd link), so nothing can swap the path under it. Memory stays bounded whatever
 * the bridge writes: at most one line of HELPER_EVENTS_MAX_LINE is held. */
#include "helper-events.h"
#include "helper-bridge.h"
#include "helper-supervise.h"
#include "lcvm-error.h"
#include "lcvm-json-depth.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <json-glib/json-glib.h>
#include <sys/inotify.h>
#include <unistd.h>

#define READ_CHUNK 65536

struct _HelperEvents {
  int fd;
  int inotify_fd;
  guint source;
  off_t offset;
  GString *line;
  gboolean overlong; /* the current line passed the cap: skipped up to its end */
  HelperEventFunc func;
  HelperEventsDoneFunc done;
  gpointer data;
};

static const char *
string_member(JsonObject *obj, const char *name)
{
  JsonNode *n = json_object_get_member(obj, name);
  if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(n);
}

static void
take_line(HelperEvents *e, const char *text, gsize len)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  if (len == 0 || !lcvm_json_load_bounded(parser, text, (gssize)len, NULL))
    return;
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root))
    return;
  JsonObject *obj = json_node_get_object(root);
  const char *event = string_member(obj, "event");
  const char *payload = string_member(obj, "payload");
  if (event != NULL && payload != NULL)
    e->func(event, payload, e->data);
}

static void
take_bytes(HelperEvents *e, const char *buf, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    if (buf[i] == '\n') {
      if (!e->overlong)
        take_line(e, e->line->str, e->line->len);
      g_string_truncate(e->line, 0);
      e->overlong = FALSE;
    } else if (e->line->len >= HELPER_EVENTS_MAX_LINE) {
      e->overlong = TRUE;
    } else {
      g_string_append_c(e->line, buf[i]);
    }
  }
}

void
helper_events_catch_up(HelperEvents *e)
{
  char buf[READ_CHUNK];
  gboolean any = FALSE;
  for (;;) {
    ssize_t n = pread(e->fd, buf, sizeof buf, e->offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    e->offset += n;
    take_bytes(e, buf, (gsize)n);
    any = TRUE;
  }
  if (any && e->done != NULL)
    e->done(e->data);
}

static gboolean
on_inotify(gint fd, GIOCondition condition, gpointer data)
{
  HelperEvents *e = data;
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  while (read(fd, buf, sizeof buf) > 0)
    ; /* which event it was does not matter: the file is read from the last offset */
  helper_events_catch_up(e);
  return G_SOURCE_CONTINUE;
}

static int
open_events(const LcvmConfig *config, const char *name, GError **error)
{
  int dir = helper_runtime_dir_open(config, name, FALSE, error);
  if (dir < 0)
    return -1;
  int fd = openat(dir, HELPER_RUNTIME_EVENTS, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  int err = errno;
  close(dir);
  if (fd < 0)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s: cannot open its event file: %s", name,
                g_strerror(err));
  return fd;
}

HelperEvents *
helper_events_follow(const LcvmConfig *config, const char *name, HelperEventFunc func,
                     HelperEventsDoneFunc done, gpointer data, GError **error)
{
  int fd = open_events(config, name, error);
  if (fd < 0)
    return NULL;
  HelperEvents *e = g_new0(HelperEvents, 1);
  e->fd = fd;
  e->line = g_string_new(NULL);
  e->func = func;
  e->done = done;
  e->data = data;
  e->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  g_autofree char *self = g_strdup_printf("/proc/self/fd/%d", fd);
  if (e->inotify_fd < 0 || inotify_add_watch(e->inotify_fd, self, IN_MODIFY) < 0) {
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s: cannot watch its event file: %s",
                name, g_strerror(errno));
    helper_events_free(e);
    return NULL;
  }
  e->source = g_unix_fd_add(e->inotify_fd, G_IO_IN, on_inotify, e);
  helper_events_catch_up(e);
  return e;
}

void
helper_events_free(HelperEvents *e)
{
  if (e == NULL)
    return;
  if (e->source != 0)
    g_source_remove(e->source);
  if (e->inotify_fd >= 0)
    close(e->inotify_fd);
  close(e->fd);
  g_string_free(e->line, TRUE);
  g_free(e);
}
