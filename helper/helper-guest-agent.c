/* SPDX-License-Identifier: MIT */
/* The guest agent client (see helper-guest-agent.h). Never sends anything a caller wrote: the
 * request is a constant and the address comes from the VM's reservation and root's config. */
#include "helper-guest-agent.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REQUEST                                                                                    \
  "POST /api/Shutdown?json HTTP/1.1\r\n"                                                           \
  "Host: localhost\r\n"                                                                            \
  "Content-Type: application/json\r\n"                                                             \
  "Content-Length: 2\r\n"                                                                          \
  "Connection: close\r\n"                                                                          \
  "\r\n"                                                                                           \
  "{}"

gboolean
helper_guest_agent_parse_status(const char *buf, gsize len, guint *code)
{
  static const char prefix[] = "HTTP/1.";
  const char *eol = memchr(buf, '\n', len);
  gsize n = sizeof prefix - 1;
  if (eol == NULL || (gsize)(eol - buf) < n + 5 || memcmp(buf, prefix, n) != 0)
    return FALSE;
  const char *p = buf + n;
  if (!g_ascii_isdigit(p[0]) || p[1] != ' ')
    return FALSE;
  p += 2;
  if (!g_ascii_isdigit(p[0]) || !g_ascii_isdigit(p[1]) || !g_ascii_isdigit(p[2]))
    return FALSE;
  if (p + 3 != eol && p[3] != ' ' && !(p[3] == '\r' && p + 4 == eol))
    return FALSE;
  guint value = (guint)(p[0] - '0') * 100 + (guint)(p[1] - '0') * 10 + (guint)(p[2] - '0');
  if (value < 100 || value > 599)
    return FALSE;
  *code = value;
  return TRUE;
}

static int
remaining_ms(gint64 deadline)
{
  gint64 left = (deadline - g_get_monotonic_time()) / 1000;
  return left > 0 ? (int)MIN(left, G_MAXINT) : 0;
}

static gboolean
wait_fd(int fd, short events, gint64 deadline)
{
  struct pollfd p = { .fd = fd, .events = events };
  int r;
  do
    r = poll(&p, 1, remaining_ms(deadline));
  while (r < 0 && errno == EINTR);
  return r > 0;
}

static gboolean
fail(GError **error, guint cid, const char *what, int err)
{
  g_set_error(error, LCVM_ERROR, LCVM_ERROR_FAILED,
              "the guest agent (vsock CID %u, port %d) %s%s%s", cid, HELPER_GUEST_AGENT_PORT, what,
              err ? ": " : "", err ? g_strerror(err) : "");
  return FALSE;
}

/* A non-blocking stream socket connected to the agent, or -1. */
static int
agent_connect(const LcvmConfig *config, guint cid, gint64 deadline, GError **error)
{
  struct sockaddr_storage ss = { 0 };
  socklen_t len;
  const char *dir = config->guest_agent_socket_dir;
  if (dir != NULL && dir[0] != '\0') {
    struct sockaddr_un *un = (struct sockaddr_un *)&ss;
    un->sun_family = AF_UNIX;
    g_autofree char *path = g_strdup_printf("%s/%u.sock", dir, cid);
    if (strlen(path) >= sizeof un->sun_path)
      return fail(error, cid, "socket path is too long", 0), -1;
    strcpy(un->sun_path, path);
    len = sizeof *un;
  } else {
    struct sockaddr_vm *vm = (struct sockaddr_vm *)&ss;
    vm->svm_family = AF_VSOCK;
    vm->svm_cid = cid;
    vm->svm_port = HELPER_GUEST_AGENT_PORT;
    len = sizeof *vm;
  }
  lcvm_autofd int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return fail(error, cid, "cannot be reached", errno), -1;
  if (connect(fd, (struct sockaddr *)&ss, len) == 0)
    return lcvm_steal_fd(&fd);
  int err = errno;
  if ((err == EINPROGRESS || err == EAGAIN) && wait_fd(fd, POLLOUT, deadline)) {
    socklen_t sl = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) == 0 && err == 0)
      return lcvm_steal_fd(&fd);
  } else if (err == EINPROGRESS || err == EAGAIN) {
    err = ETIMEDOUT;
  }
  return fail(error, cid, "does not answer", err), -1;
}

static gboolean
send_all(int fd, const char *data, gsize len, gint64 deadline)
{
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline))
      continue;
    if (n <= 0)
      return FALSE;
    data += n;
    len -= (gsize)n;
  }
  return TRUE;
}

/* Reads until the status line is complete, EOF, the cap or the deadline. */
static gsize
read_status_line(int fd, char *buf, gsize cap, gint64 deadline)
{
  gsize have = 0;
  while (have < cap && memchr(buf, '\n', have) == NULL) {
    ssize_t n = recv(fd, buf + have, cap - have, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && errno == EAGAIN && wait_fd(fd, POLLIN, deadline))
      continue;
    if (n <= 0)
      break;
    have += (gsize)n;
  }
  return have;
}

gboolean
helper_guest_agent_shutdown(const LcvmConfig *config, guint cid, guint timeout_ms, GError **error)
{
  gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
  lcvm_autofd int fd = agent_connect(config, cid, deadline, error);
  if (fd < 0)
    return FALSE;
  char buf[HELPER_GUEST_AGENT_MAX_REPLY];
  gboolean sent = send_all(fd, REQUEST, sizeof REQUEST - 1, deadline);
  int err = errno;
  gsize have = sent ? read_status_line(fd, buf, sizeof buf, deadline) : 0;
  if (!sent)
    return fail(error, cid, "did not take the Shutdown request", err);
  guint code = 0;
  if (!helper_guest_agent_parse_status(buf, have, &code))
    return fail(error, cid, have == 0 ? "sent no answer in time" : "sent no HTTP status line", 0);
  if (code / 100 == 2)
    return TRUE;
  g_autofree char *what = g_strdup_printf("refused the Shutdown request (HTTP %u)", code);
  return fail(error, cid, what, 0);
}
