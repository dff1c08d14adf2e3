/* SPDX-License-Identifier: MIT */
/* The event file follower (see the header). The file is opened once, without following a
 * symlink, in the root-only runtime_dir/NAME; the inotify watch is put on that open file (its
 * /proc/self/fd link), so nothing can swap the path under it. Memory stays bounded whatever
 * the bridge writes: at most one line of HELPER_EVENTS_MAX_LINE is held, and one batch of
 * HELPER_EVENTS_MAX_BATCH bytes is read per main-loop iteration. */
#include "helper-events.h"
#include "lcvm-fd.h"
#include "helper-bridge.h"
#include "helper-runtime-record.h"
#include "lcvm-error.h"
#include "lcvm-json-depth.h"
#include "lcvm-layout.h"
#include "lcvm-text.h"

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
  guint refused;     /* lines dropped since the last warning */
  guint more_source; /* reading the rest of a large append, one batch per iteration */
  char *name;
  HelperEventFunc func;
  HelperEventsDoneFunc done;
  gpointer data;
};

gboolean
helper_events_parse_line(const char *text, gsize len, char **event, char **payload)
{
  g_autoptr(JsonNode) root = len > 0 ? lcvm_json_parse_bounded(text, (gssize)len, NULL) : NULL;
  JsonObject *obj =
      root != NULL && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  const char *ev = lcvm_json_string_member(obj, "event");
  const char *pl = lcvm_json_string_member(obj, "payload");
  /* The bridge refuses control characters already; a bridge the guest took over does not. */
  if (ev == NULL || pl == NULL || !lcvm_text_is_plain(ev, strlen(ev)) ||
      !lcvm_text_is_plain(pl, strlen(pl)))
    return FALSE;
  *event = g_strdup(ev);
  *payload = g_strdup(pl);
  return TRUE;
}

static void
take_line(HelperEvents *e, const char *text, gsize len)
{
  g_autofree char *event = NULL, *payload = NULL;
  if (helper_events_parse_line(text, len, &event, &payload))
    e->func(event, payload, e->data);
  else
    e->refused++;
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
      if (!e->overlong)
        e->refused++;
      e->overlong = TRUE;
    } else {
      g_string_append_c(e->line, buf[i]);
    }
  }
}

/* Reads at most max bytes; TRUE when the file may hold more. */
static gboolean
read_some(HelperEvents *e, gsize max)
{
  char buf[READ_CHUNK];
  gsize total = 0;
  gboolean more = FALSE;
  while (!(more = total >= max)) {
    ssize_t n = pread(e->fd, buf, sizeof buf, e->offset);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    e->offset += n;
    total += (gsize)n;
    take_bytes(e, buf, (gsize)n);
  }
  if (e->refused > 0) {
    g_warning("event file %s: %u line(s) dropped: not a JSON object with \"event\" and "
              "\"payload\" strings of plain text, or longer than %d bytes",
              e->name, e->refused, HELPER_EVENTS_MAX_LINE);
    e->refused = 0;
  }
  if (total > 0 && e->done != NULL)
    e->done(e->data);
  return more;
}

void
helper_events_catch_up(HelperEvents *e)
{
  /* The whole rest: the bridge's RLIMIT_FSIZE bounds the file. */
  while (read_some(e, HELPER_EVENTS_MAX_BATCH))
    ;
}

static gboolean
on_more(gpointer data)
{
  HelperEvents *e = data;
  if (read_some(e, HELPER_EVENTS_MAX_BATCH))
    return G_SOURCE_CONTINUE;
  e->more_source = 0;
  return G_SOURCE_REMOVE;
}

static gboolean
on_inotify(gint fd, GIOCondition condition, gpointer data)
{
  HelperEvents *e = data;
  char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
  while (read(fd, buf, sizeof buf) > 0)
    ; /* which event it was does not matter: the file is read from the last offset */
  /* One batch per main-loop iteration: a flood of events must not keep the helper from its
   * callers. The rest is read from an idle source, one batch at a time. */
  if (e->more_source == 0 && read_some(e, HELPER_EVENTS_MAX_BATCH))
    e->more_source = g_idle_add(on_more, e);
  return G_SOURCE_CONTINUE;
}

static int
open_events(const LcvmConfig *config, const char *name, GError **error)
{
  lcvm_autofd int dir = helper_runtime_dir_open(config, name, FALSE, error);
  if (dir < 0)
    return -1;
  int fd = openat(dir, LCVM_RUNTIME_EVENTS, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "VM %s: cannot open its event file: %s", name,
                g_strerror(errno));
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
  e->name = g_strdup(name);
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
  if (e->more_source != 0)
    g_source_remove(e->more_source);
  g_free(e->name);
  lcvm_close_fdp(&e->inotify_fd);
  lcvm_close_fdp(&e->fd);
  g_string_free(e->line, TRUE);
  g_free(e);
}
