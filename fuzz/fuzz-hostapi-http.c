/* SPDX-License-Identifier: MIT */
/* The guest's host API as the bridge serves it (helper/hostapi/hostapi-routes.c over libsoup's
 * HTTP/1 parser): the input is the whole byte stream of one connection, fed through a memory
 * stream into the real SoupServer with the real routes, the shared/ directory and the event
 * file in a temporary directory, and a key provider that refuses connections. Every answer
 * must be HTTP with a JSON body, and the event file may only gain plain-text events. */
#include "fuzz.h"
#include "hostapi.h"
#include "lcvm-text.h"
#include <fcntl.h>
#include <glib/gstdio.h>
#include <unistd.h>

#define DEADLINE_MS 200

static SoupServer *server;
static HostapiRoutes routes;
static char *events_path;

/* libsoup 3.2 warns about a negative Content-Length before the routes see the request (the
 * bridge refuses it, and rate-limits what it logs): that one is libsoup's, every other message
 * is a finding. */
static void
on_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer data)
{
  if (g_strcmp0(domain, "GLib-GObject") == 0 && strstr(message, "property 'content-length'"))
    return;
  fuzz_abort_on_log(domain, level, message, data);
}

/* As hostapi-main.c does: one request per connection. */
static void
on_request_started(SoupServer *s, SoupServerMessage *msg, gpointer data)
{
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                               "close");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
  g_log_set_default_handler(on_log, NULL);
  g_autofree char *dir = g_dir_make_tmp("lcvm-fuzz-hostapi-XXXXXX", NULL);
  g_autofree char *shared = g_build_filename(dir, "shared", NULL);
  g_mkdir(shared, 0755);
  events_path = g_build_filename(dir, "events", NULL);
  routes.shared_fd = open(shared, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  routes.events_fd = open(events_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  routes.provider = g_inet_socket_address_new(lo, 1); /* nobody listens: refused at once */
  routes.provider_timeout_s = 1;
  server = soup_server_new("server-header", "lium-cvm-hostapi", NULL);
  hostapi_routes_attach(server, &routes);
  g_signal_connect(server, "request-started", G_CALLBACK(on_request_started), NULL);
  /* GLib, GIO and libsoup set up caches on first use (10 bytes on the first malformed header,
   * on the first connection to the provider): done here, so that LeakSanitizer reports only
   * what one input leaks. */
  static const char *const warm_up[][2] = {
    { "/api/Info", "" },
    { "/api/Notify?json", "{}" },
    { "/api/Notify", "{\"event\": \"boot.progress\", \"payload\": \"\"}" },
    { "/api/GetSealingKey", "{\"quote\": \"00\"}" },
    { "/api/Info", NULL }, /* a malformed header */
  };
  for (guint i = 0; i < G_N_ELEMENTS(warm_up); i++) {
    const char *body = warm_up[i][1];
    g_autofree char *req =
        body != NULL
            ? g_strdup_printf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
                              warm_up[i][0], strlen(body), body)
            : g_strdup_printf("POST %s HTTP/1.1\r\nConteT x\r\nContent-Length: x\r\n\r\n",
                              warm_up[i][0]);
    LLVMFuzzerTestOneInput((const uint8_t *)req, strlen(req));
  }
  return 0;
}

static gboolean
on_deadline(gpointer data)
{
  *(gboolean *)data = TRUE;
  return G_SOURCE_REMOVE;
}

static void
check_answer(GMemoryOutputStream *out)
{
  gsize len = g_memory_output_stream_get_data_size(out);
  const char *text = g_memory_output_stream_get_data(out);
  if (len == 0)
    return; /* libsoup closed without answering (a request it could not parse at all) */
  g_assert(len >= 12 && memcmp(text, "HTTP/1.", 7) == 0);
  const char *body = g_strstr_len(text, (gssize)len, "\r\n\r\n");
  g_assert(body != NULL);
  body += 4;
  gsize body_len = len - (gsize)(body - text);
  /* Every answer with a body is JSON (the routes never answer anything else). */
  if (body_len > 0)
    g_assert(g_utf8_validate(body, (gssize)body_len, NULL) && (body[0] == '{'));
}

static void
check_events(void)
{
  g_autofree char *text = NULL;
  if (!g_file_get_contents(events_path, &text, NULL, NULL))
    return;
  g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    g_assert(lines[i][0] == '\0' || g_utf8_validate(lines[i], -1, NULL));
  g_assert(ftruncate(routes.events_fd, 0) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  g_autoptr(GInputStream) in =
      g_memory_input_stream_new_from_data(g_memdup2(data, size), size, g_free);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
  g_autoptr(GIOStream) stream = g_simple_io_stream_new(in, out);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) local = g_inet_socket_address_new(lo, 8090);
  g_autoptr(GSocketAddress) remote = g_inet_socket_address_new(lo, 40000);
  g_assert(soup_server_accept_iostream(server, stream, local, remote, NULL));
  gboolean expired = FALSE;
  guint deadline = g_timeout_add(DEADLINE_MS, on_deadline, &expired);
  while (!expired && !g_io_stream_is_closed(stream))
    g_main_context_iteration(NULL, TRUE);
  if (!expired)
    g_source_remove(deadline);
  while (g_main_context_iteration(NULL, FALSE))
    ;
  check_answer(G_MEMORY_OUTPUT_STREAM(out));
  check_events();
  return 0;
}
