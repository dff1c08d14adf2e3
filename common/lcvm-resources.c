/* Host resource probes (see the header). */
#include "lcvm-resources.h"
#include "lcvm-error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

guint
lcvm_host_cpu_count(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (guint)n : 1;
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
  int fd = socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return port_error(error, errno, forward);
  int one = 1;
  int err = 0;
  if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    err = errno;
  if (err == 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
    err = errno;
  close(fd);
  return err == 0 ? TRUE : port_error(error, err, forward);
}
