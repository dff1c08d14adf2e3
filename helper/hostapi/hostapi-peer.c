/* SPDX-License-Identifier: MIT */
/* Who is on the other end of a loopback TCP connection: the kernel's sock_diag answers with the
 * uid owning the client's socket, looked up by the exact 4-tuple. Only that uid — the VM's
 * QEMU, whose slirp stack makes the guest's connections — may talk to the bridge; every other
 * local user is refused before a byte of HTTP is read. Never trusts anything the client says. */
#include "hostapi.h"
#include "lcvm-fd.h"
#include "lcvm-error.h"
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
  int family;
  guint8 addr[16];
  guint16 port;
} Endpoint;

static gboolean
endpoint_from(GSocketAddress *address, Endpoint *e, GError **error)
{
  if (!G_IS_INET_SOCKET_ADDRESS(address)) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "the connection is not a TCP/IP connection");
    return FALSE;
  }
  GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS(address);
  GInetAddress *a = g_inet_socket_address_get_address(inet);
  memset(e, 0, sizeof *e);
  e->family = g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
  memcpy(e->addr, g_inet_address_to_bytes(a), g_inet_address_get_native_size(a));
  e->port = g_inet_socket_address_get_port(inet);
  return TRUE;
}

static gboolean
send_request(int fd, const Endpoint *client, const Endpoint *server, GError **error)
{
  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 req;
  } msg;
  memset(&msg, 0, sizeof msg);
  msg.nlh.nlmsg_len = sizeof msg;
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.req.sdiag_family = (guint8)client->family;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0u;
  /* The client's socket: its source is our remote end, its destination our local end. */
  msg.req.id.idiag_sport = htons(client->port);
  msg.req.id.idiag_dport = htons(server->port);
  memcpy(msg.req.id.idiag_src, client->addr, sizeof msg.req.id.idiag_src);
  memcpy(msg.req.id.idiag_dst, server->addr, sizeof msg.req.id.idiag_dst);
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  ssize_t n;
  do
    n = sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)sizeof msg)
    return lcvm_set_errno(error, errno, "sock_diag request");
  return TRUE;
}

static gboolean
same_socket(const struct inet_diag_msg *m, const Endpoint *client, const Endpoint *server)
{
  gsize alen = client->family == AF_INET ? 4 : 16;
  return m->idiag_family == client->family && ntohs(m->id.idiag_sport) == client->port &&
         ntohs(m->id.idiag_dport) == server->port &&
         memcmp(m->id.idiag_src, client->addr, alen) == 0 &&
         memcmp(m->id.idiag_dst, server->addr, alen) == 0;
}

static gboolean
read_answer(int fd, const Endpoint *client, const Endpoint *server, uid_t *uid, GError **error)
{
  guint32 buf[2048];
  ssize_t n;
  do
    n = recv(fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return lcvm_set_errno(error, errno, "sock_diag answer");
  int len = (int)n;
  for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_type == NLMSG_ERROR) {
      const struct nlmsgerr *err = NLMSG_DATA(h);
      int e = err->error < 0 ? -err->error : EPROTO;
      return lcvm_set_errno(error, e, "no client socket found for the connection");
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
        h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
      continue;
    const struct inet_diag_msg *m = NLMSG_DATA(h);
    if (!same_socket(m, client, server))
      continue;
    *uid = m->idiag_uid;
    return TRUE;
  }
  g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                      "sock_diag did not report the connection's client socket");
  return FALSE;
}

gboolean
hostapi_peer_uid(GSocketAddress *local, GSocketAddress *remote, uid_t *uid, GError **error)
{
  Endpoint server, client;
  if (!endpoint_from(local, &server, error) || !endpoint_from(remote, &client, error))
    return FALSE;
  if (server.family != client.family) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                        "the connection mixes IPv4 and IPv6 addresses");
    return FALSE;
  }
  lcvm_autofd int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return lcvm_set_errno(error, errno, "sock_diag socket");
  gboolean ok =
      send_request(fd, &client, &server, error) && read_answer(fd, &client, &server, uid, error);
  return ok;
}
