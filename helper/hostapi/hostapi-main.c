/* SPDX-License-Identifier: MIT */
/* lium-cvm-hostapi: the host API of ONE VM's guest (DESIGN §2, reference/dstack.md §4).
 *
 * The helper spawns it confined (its own uid, no capabilities, seccomp) and hands it
 * everything as numbers: the listening loopback socket (bound by the helper), the key
 * provider's numeric address, the uid of the VM's QEMU, the instance's shared/ directory and
 * the event file as fds. It never opens a path by name, never resolves a host name and never
 * forks. A connection is served only when sock_diag says its client socket belongs to the
 * QEMU uid; the connection count, request size and time per request are capped. */
#include "config.h"
#include "hostapi.h"
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lcvm-confined-lsan.h"

typedef struct {
  SoupServer *server;
  HostapiRoutes routes;
  uid_t peer_uid;
  guint max_connections;
  guint connections;
  guint request_timeout_s;
  gint64 last_refusal_log;
  guint refusals_unlogged;
} Bridge;

typedef struct {
  int listen_fd;
  char *provider;
  gint64 peer_uid;
  int shared_fd;
  int events_fd;
  int request_timeout;
  int provider_timeout;
  int max_connections;
} Options;

/* ---- logging ---- */

/* What the bridge logs goes to the journal, and a guest can make libsoup warn once per request
 * (found by fuzzing: "Content-Length: -5"): at most LOG_PER_SECOND messages a second pass. */
#define LOG_PER_SECOND 5

static GLogWriterOutput
limited_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
  static gint64 window;
  static guint passed, dropped;
  gint64 now = g_get_monotonic_time();
  if (now - window >= G_USEC_PER_SEC) {
    if (dropped > 0)
      g_printerr("lium-cvm-hostapi: %u more log messages dropped\n", dropped);
    window = now;
    passed = dropped = 0;
  }
  if (++passed > LOG_PER_SECOND) {
    dropped++;
    return G_LOG_WRITER_HANDLED;
  }
  return g_log_writer_default(level, fields, n_fields, data);
}

/* ---- refusing connections ---- */

/* A local user can open connections as fast as it likes: log at most one refusal a second. */
static void
log_refusal(Bridge *b, const char *why)
{
  gint64 now = g_get_monotonic_time();
  if (now - b->last_refusal_log < G_USEC_PER_SEC) {
    b->refusals_unlogged++;
    return;
  }
  if (b->refusals_unlogged > 0)
    g_printerr("lium-cvm-hostapi: %u more connections refused\n", b->refusals_unlogged);
  g_printerr("lium-cvm-hostapi: connection refused: %s\n", why);
  b->last_refusal_log = now;
  b->refusals_unlogged = 0;
}

static gboolean
peer_allowed(Bridge *b, GSocket *socket, GError **error)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, error);
  g_autoptr(GSocketAddress) remote = local ? g_socket_get_remote_address(socket, error) : NULL;
  uid_t uid = 0;
  if (remote == NULL || !hostapi_peer_uid(local, remote, &uid, error))
    return FALSE;
  if (uid != b->peer_uid) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED,
                "the client socket belongs to uid %u, not to the VM's uid %u", (guint)uid,
                (guint)b->peer_uid);
    return FALSE;
  }
  return TRUE;
}

/* What the first request of a connection decided about it, kept on its GSocket. An allowed
 * connection holds one of the slots until libsoup reports it disconnected (through whichever
 * request is current then) or the socket goes away, whichever comes first. Reference-counted:
 * the socket and every request's signal handler hold one. */
#define CONNECTION_KEY "lcvm-connection"

typedef struct {
  Bridge *bridge;
  gboolean allowed;
  gboolean released;
} Connection;

static void
connection_release(Connection *c)
{
  if (c->allowed && !c->released)
    c->bridge->connections--;
  c->released = TRUE;
}

static void
connection_unref(gpointer p)
{
  g_rc_box_release_full(p, (GDestroyNotify)connection_release);
}

static void
connection_closure_unref(gpointer p, GClosure *closure)
{
  connection_unref(p);
}

static void
on_disconnected(SoupServerMessage *msg, gpointer data)
{
  connection_release(data);
}

static Connection *
connection_check(Bridge *b, GSocket *socket)
{
  Connection *c = g_rc_box_new0(Connection);
  c->bridge = b;
  g_autoptr(GError) error = NULL;
  if (b->connections >= b->max_connections)
    g_set_error(&error, G_IO_ERROR, G_IO_ERROR_TOO_MANY_OPEN_FILES,
                "already %u connections open (the limit)", b->connections);
  else
    peer_allowed(b, socket, &error);
  if (error != NULL) {
    log_refusal(b, error->message);
  } else {
    c->allowed = TRUE;
    b->connections++;
  }
  g_object_set_data_full(G_OBJECT(socket), CONNECTION_KEY, c, connection_unref);
  return c;
}

/* Runs before libsoup reads a byte of each request. A request on a refused connection gets a
 * status at once, which makes libsoup skip every handler, and the connection is closed. */
static gboolean
connection_allowed(Bridge *b, SoupServerMessage *msg)
{
  GSocket *socket = soup_server_message_get_socket(msg);
  if (socket == NULL)
    return FALSE;
  Connection *c = g_object_get_data(G_OBJECT(socket), CONNECTION_KEY);
  if (c == NULL)
    c = connection_check(b, socket);
  if (c->allowed)
    g_signal_connect_data(msg, "disconnected", G_CALLBACK(on_disconnected), g_rc_box_acquire(c),
                          connection_closure_unref, 0);
  return c->allowed && !c->released;
}

static void
refuse(SoupServerMessage *msg)
{
  static const char body[] = "{\"error\":\"connection refused: not the VM's socket, or too "
                             "many connections\"}";
  soup_server_message_set_status(msg, SOUP_STATUS_FORBIDDEN, NULL);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_STATIC, body,
                                   sizeof body - 1);
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                               "close");
}

/* ---- time per request ---- */

#define DEADLINE_KEY "lcvm-read-deadline"

static void
destroy_source(gpointer p)
{
  g_source_destroy(p);
  g_source_unref(p);
}

/* The client took too long to send its request (a slow drip, or an idle keep-alive
 * connection): shut the socket down; libsoup sees the end of the stream and drops it. */
static gboolean
on_read_deadline(gpointer data)
{
  GSocket *socket = soup_server_message_get_socket(SOUP_SERVER_MESSAGE(data));
  if (socket != NULL)
    g_socket_shutdown(socket, TRUE, TRUE, NULL);
  return G_SOURCE_REMOVE;
}

static void
on_request_started(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  Bridge *b = data;
  /* One request per connection: libsoup 3.2 never notices a client closing an idle keep-alive
   * connection, so such a connection would keep its fd and its slot for good. */
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                               "close");
  if (!connection_allowed(b, msg))
    refuse(msg);
  GSource *deadline = g_timeout_source_new_seconds(b->request_timeout_s);
  /* The message owns the source (destroyed with it), so the callback never outlives it. */
  g_source_set_callback(deadline, on_read_deadline, msg, NULL);
  g_source_attach(deadline, NULL);
  g_object_set_data_full(G_OBJECT(msg), DEADLINE_KEY, deadline, destroy_source);
}

static void
on_request_read(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
  g_object_set_data(G_OBJECT(msg), DEADLINE_KEY, NULL);
}

/* ---- start-up: every input is a number, checked before serving ---- */

static gboolean fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

static gboolean
fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_printerr("lium-cvm-hostapi: %s\n", msg);
  return FALSE;
}

static GSocket *
listening_socket(int fd)
{
  int listening = 0;
  socklen_t len = sizeof listening;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
    fail("--listen-fd %d is not a listening socket", fd);
    return NULL;
  }
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new_from_fd(fd, &error);
  if (socket == NULL) {
    fail("--listen-fd %d: %s", fd, error->message);
    return NULL;
  }
  g_autoptr(GSocketAddress) local = g_socket_get_local_address(socket, &error);
  if (local == NULL || !G_IS_INET_SOCKET_ADDRESS(local) ||
      g_socket_get_protocol(socket) != G_SOCKET_PROTOCOL_TCP ||
      !g_inet_address_get_is_loopback(
          g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(local)))) {
    fail("--listen-fd %d must be a TCP socket bound to a loopback address", fd);
    return NULL;
  }
  return g_steal_pointer(&socket);
}

static GSocketAddress *
provider_address(const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnectable) c = g_network_address_parse(text ? text : "", 0, &error);
  if (c == NULL)
    return fail("--key-provider '%s' is not HOST:PORT", text ? text : ""), NULL;
  const char *host = g_network_address_get_hostname(G_NETWORK_ADDRESS(c));
  guint16 port = g_network_address_get_port(G_NETWORK_ADDRESS(c));
  g_autoptr(GInetAddress) addr = g_inet_address_new_from_string(host);
  if (addr == NULL || port == 0)
    return fail("--key-provider '%s' must be a numeric IP address and a port", text), NULL;
  return g_inet_socket_address_new(addr, port);
}

static gboolean
check_fds(const Options *o)
{
  struct stat st;
  if (fstat(o->shared_fd, &st) < 0 || !S_ISDIR(st.st_mode))
    return fail("--shared-fd %d is not an open directory", o->shared_fd);
  int flags = fcntl(o->events_fd, F_GETFL);
  if (fstat(o->events_fd, &st) < 0 || !S_ISREG(st.st_mode) || flags < 0 ||
      (flags & O_APPEND) == 0 || (flags & O_ACCMODE) == O_RDONLY)
    return fail("--events-fd %d is not a regular file open for appending", o->events_fd);
  return TRUE;
}

static gboolean
parse_options(int argc, char **argv, Options *o)
{
  *o = (Options){ .listen_fd = -1,
                  .peer_uid = -1,
                  .shared_fd = -1,
                  .events_fd = -1,
                  .request_timeout = 10,
                  .provider_timeout = 25,
                  .max_connections = 8 };
  const GOptionEntry entries[] = {
    { "listen-fd", 0, 0, G_OPTION_ARG_INT, &o->listen_fd, "Listening loopback TCP socket", "FD" },
    { "key-provider", 0, 0, G_OPTION_ARG_STRING, &o->provider, "Key provider address", "IP:PORT" },
    { "peer-uid", 0, 0, G_OPTION_ARG_INT64, &o->peer_uid, "The only uid served (VM's QEMU)",
      "UID" },
    { "shared-fd", 0, 0, G_OPTION_ARG_INT, &o->shared_fd, "The instance's shared/ directory",
      "FD" },
    { "events-fd", 0, 0, G_OPTION_ARG_INT, &o->events_fd, "Event file open with O_APPEND", "FD" },
    { "request-timeout", 0, 0, G_OPTION_ARG_INT, &o->request_timeout,
      "Seconds a client has to send a request (10)", "S" },
    { "provider-timeout", 0, 0, G_OPTION_ARG_INT, &o->provider_timeout,
      "Seconds for a whole key provider exchange (25; the guest waits 30)", "S" },
    { "max-connections", 0, 0, G_OPTION_ARG_INT, &o->max_connections,
      "Connections served at once (8)", "N" },
    { NULL },
  };
  g_autoptr(GOptionContext) ctx = g_option_context_new("- the guest's host API for one VM");
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error))
    return fail("%s", error->message);
  if (argc > 1)
    return fail("unexpected argument '%s'", argv[1]);
  if (o->listen_fd < 3 || o->shared_fd < 3 || o->events_fd < 3 || o->provider == NULL ||
      o->peer_uid < 0 || o->peer_uid > G_MAXUINT32 - 1)
    return fail("--listen-fd, --shared-fd, --events-fd (each 3 or above), --key-provider and "
                "--peer-uid are required");
  if (o->request_timeout < 1 || o->request_timeout > 600 || o->provider_timeout < 1 ||
      o->provider_timeout > 600 || o->max_connections < 1 || o->max_connections > 256)
    return fail("timeouts are 1 to 600 seconds, --max-connections 1 to 256");
  return check_fds(o);
}

static gboolean
on_signal(gpointer data)
{
  g_main_loop_quit(data);
  return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
  g_log_set_writer_func(limited_writer, NULL, NULL);
  Options o;
  gboolean parsed = parse_options(argc, argv, &o);
  g_autofree char *provider_text = o.provider;
  if (!parsed)
    return 2;
  g_autoptr(GSocket) listener = listening_socket(o.listen_fd);
  g_autoptr(GSocketAddress) provider = provider_address(provider_text);
  if (listener == NULL || provider == NULL)
    return 2;

  Bridge b = { 0 };
  b.peer_uid = (uid_t)o.peer_uid;
  b.max_connections = (guint)o.max_connections;
  b.request_timeout_s = (guint)o.request_timeout;
  b.routes = (HostapiRoutes){ .provider = provider,
                              .provider_timeout_s = (guint)o.provider_timeout,
                              .shared_fd = o.shared_fd,
                              .events_fd = o.events_fd };
  b.server = soup_server_new("server-header", "lium-cvm-hostapi", NULL);
  hostapi_routes_attach(b.server, &b.routes);
  g_signal_connect(b.server, "request-started", G_CALLBACK(on_request_started), &b);
  g_signal_connect(b.server, "request-read", G_CALLBACK(on_request_read), &b);

  g_autoptr(GError) error = NULL;
  if (!soup_server_listen_socket(b.server, listener, 0, &error)) {
    fail("cannot listen: %s", error->message);
    return 2;
  }

  /* Past RLIMIT_FSIZE (the helper sets it) a write fails with EFBIG and the guest gets a 503,
   * instead of the bridge dying of SIGXFSZ. */
  signal(SIGXFSZ, SIG_IGN);
  g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
  g_unix_signal_add(SIGTERM, on_signal, loop);
  g_unix_signal_add(SIGINT, on_signal, loop);
  g_main_loop_run(loop);

  soup_server_disconnect(b.server);
  g_object_unref(b.server);
  return 0;
}
