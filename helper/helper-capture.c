/* SPDX-License-Identifier: MIT */
/* The collection loop both runners share (see the header): one poll over stdout, stderr and
 * the pidfd until all three have ended or the deadline passed. */
#include "helper-capture.h"
#include "helper-process.h"
#include "lcvm-error.h"
#include "lcvm-fd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define READ_CHUNK 4096

typedef struct {
  int fd;
  GString *kept;
  gboolean *cut;
  GString *line; /* the stdout line being assembled (with on_line only) */
} Stream;

void
helper_captured_clear(HelperCaptured *c)
{
  if (c->out != NULL)
    g_string_free(c->out, TRUE);
  if (c->err != NULL)
    g_string_free(c->err, TRUE);
  c->out = c->err = NULL;
}

void
helper_capture_pipes_close(HelperCapturePipes *p)
{
  for (guint i = 0; i < 2; i++) {
    lcvm_close_fdp(&p->out[i]);
    lcvm_close_fdp(&p->err[i]);
  }
}

gboolean
helper_capture_pipes_open(HelperCapturePipes *p, gboolean separate_err, GError **error)
{
  *p = (HelperCapturePipes){ { -1, -1 }, { -1, -1 } };
  if (pipe2(p->out, O_CLOEXEC) == 0 && (!separate_err || pipe2(p->err, O_CLOEXEC) == 0))
    return TRUE;
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED, "cannot create a pipe: %s", g_strerror(errno));
  helper_capture_pipes_close(p);
  return FALSE;
}

char *
helper_captured_how(const HelperCaptured *c, const HelperCaptureOptions *o)
{
  if (c->timed_out)
    return g_strdup_printf("killed after %u s", o->timeout_ms / 1000);
  if (c->exited)
    return g_strdup_printf("exit status %d", c->status);
  return g_strdup_printf("signal %d", c->signal);
}

/* Keeps the last max bytes. The front is dropped only once twice max has gathered, so a long
 * output costs linear time. */
static void
keep(Stream *s, const char *buf, gsize n, gsize max)
{
  g_string_append_len(s->kept, buf, (gssize)n);
  if (s->kept->len > max)
    *s->cut = TRUE;
  if (s->kept->len > 2 * max)
    g_string_erase(s->kept, 0, (gssize)(s->kept->len - max));
}

static void
emit_lines(Stream *s, const HelperCaptureOptions *o, const char *buf, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    if (buf[i] != '\n')
      g_string_append_c(s->line, buf[i]);
    if (buf[i] == '\n' || s->line->len >= o->max_output) {
      o->on_line(s->line->str, o->line_data);
      g_string_truncate(s->line, 0);
    }
  }
}

static void
read_some(Stream *s, const HelperCaptureOptions *o)
{
  char buf[READ_CHUNK];
  ssize_t n = read(s->fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0) {
    lcvm_close_fdp(&s->fd);
    return;
  }
  keep(s, buf, (gsize)n, o->max_output);
  if (s->line != NULL)
    emit_lines(s, o, buf, (gsize)n);
}

static void
finish(Stream *s, const HelperCaptureOptions *o)
{
  lcvm_close_fdp(&s->fd);
  if (s->kept->len > o->max_output)
    g_string_erase(s->kept, 0, (gssize)(s->kept->len - o->max_output));
  if (s->line != NULL && s->line->len > 0)
    o->on_line(s->line->str, o->line_data);
  if (s->line != NULL)
    g_string_free(s->line, TRUE);
}

/* Polls until both pipes reached EOF and the child exited: FALSE at the deadline. */
static gboolean
collect(Stream *streams, int pidfd, const HelperCaptureOptions *o)
{
  gint64 deadline = g_get_monotonic_time() + (gint64)o->timeout_ms * 1000;
  gboolean exited = FALSE;
  while (streams[0].fd >= 0 || streams[1].fd >= 0 || !exited) {
    gint64 left = (deadline - g_get_monotonic_time()) / 1000;
    if (left <= 0)
      return FALSE;
    /* poll skips the negative fds: the ended streams, the pidfd once it fired. */
    struct pollfd p[] = { { streams[0].fd, POLLIN, 0 },
                          { streams[1].fd, POLLIN, 0 },
                          { exited ? -1 : pidfd, POLLIN, 0 } };
    int rc = poll(p, G_N_ELEMENTS(p), (int)MIN(left, G_MAXINT));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc < 0)
      return FALSE; /* cannot watch it any more: end it as at the deadline */
    for (guint i = 0; i < 2; i++)
      if (p[i].revents != 0)
        read_some(&streams[i], o);
    exited = exited || p[2].revents != 0;
  }
  return TRUE;
}

void
helper_capture(pid_t pid, int pidfd, HelperCapturePipes *pipes, const HelperCaptureOptions *o,
               HelperCaptured *result)
{
  /* Only the child may hold the write ends, or EOF never comes. */
  lcvm_close_fdp(&pipes->out[1]);
  lcvm_close_fdp(&pipes->err[1]);
  result->out = g_string_new(NULL);
  result->err = g_string_new(NULL);
  Stream streams[] = {
    { lcvm_steal_fd(&pipes->out[0]), result->out, &result->out_cut,
      o->on_line ? g_string_new(NULL) : NULL },
    { lcvm_steal_fd(&pipes->err[0]), result->err, &result->err_cut, NULL },
  };
  result->timed_out = !collect(streams, pidfd, o);
  if (result->timed_out) {
    /* Not reaped yet, so pid still names its group: nothing else can have taken the id. */
    kill(-pid, SIGKILL);
    helper_process_signal(pidfd, SIGKILL);
  }
  for (guint i = 0; i < G_N_ELEMENTS(streams); i++)
    finish(&streams[i], o);
  siginfo_t info = { 0 };
  while (waitid(P_PIDFD, (id_t)pidfd, &info, WEXITED) < 0 && errno == EINTR)
    ;
  result->exited = info.si_code == CLD_EXITED;
  result->status = result->exited ? info.si_status : 0;
  result->signal = result->exited ? 0 : info.si_status;
}
