/* SPDX-License-Identifier: MIT */
/* The routes of the guest's host API (reference/dstack.md §4.2, reference/lium.md §2.6):
 * POST /api/GetSealingKey, /api/Notify and /api/Info, each also with the pRPC `?json` query.
 * Every answer is JSON; every refusal is {"error": "..."} with a 4xx/5xx status. Request text
 * never reaches a path: .instance_info has a fixed name under the shared/ fd, events go to
 * the event fd. */
#include "config.h"
#include "lcvm-error.h"
#include "hostapi.h"
#include "lcvm-json-depth.h"
#include "lcvm-layout.h"
#include "lcvm-names.h"
#include "lcvm-text.h"
#include "lcvm-safe-io.h"
#include <errno.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INSTANCE_INFO "instance.info"

static void
respond_node(SoupServerMessage *msg, guint status, JsonNode *node)
{
  char *text = json_to_string(node, FALSE);
  gsize len = strlen(text);
  soup_server_message_set_status(msg, status, NULL);
  soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE, text, len);
}

static void respond_error(SoupServerMessage *msg, guint status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void
respond_error(SoupServerMessage *msg, guint status, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  g_autofree char *text = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_autoptr(JsonBuilder) b = json_builder_new_immutable();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "error");
  json_builder_add_string_value(b, text);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  respond_node(msg, status, root);
  /* A refused request may leave unread bytes behind: never reuse the connection. */
  soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Connection",
                               "close");
}

static void
respond_empty(SoupServerMessage *msg)
{
  g_autoptr(JsonNode) root = json_node_init_object(json_node_alloc(), json_object_new());
  respond_node(msg, SOUP_STATUS_OK, root);
}

/* The request body as a JSON object, or NULL after answering 400. */
static JsonObject *
body_object(SoupServerMessage *msg, JsonParser *parser)
{
  g_autoptr(GBytes) body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
  gsize len = 0;
  const char *data = g_bytes_get_data(body, &len);
  g_autoptr(GError) error = NULL;
  if (len == 0 || !lcvm_json_load_bounded(parser, data, (gssize)len, &error)) {
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "the request body is not JSON%s%s",
                  error ? ": " : "", error ? error->message : "");
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (!JSON_NODE_HOLDS_OBJECT(root)) {
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "the request body must be a JSON object");
    return NULL;
  }
  return json_node_get_object(root);
}

static int
hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static GBytes *
hex_decode(const char *hex)
{
  gsize n = strlen(hex);
  if (n == 0 || n % 2 != 0 || n / 2 > HOSTAPI_MAX_QUOTE)
    return NULL;
  guint8 *out = g_malloc(n / 2);
  for (gsize i = 0; i < n / 2; i++) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      g_free(out);
      return NULL;
    }
    out[i] = (guint8)(hi << 4 | lo);
  }
  return g_bytes_new_take(out, n / 2);
}

/* ---- GetSealingKey ---- */

static guint
status_for(const GError *error)
{
  if (error->domain != HOSTAPI_ERROR)
    return SOUP_STATUS_BAD_GATEWAY;
  switch ((HostapiError)error->code) {
  case HOSTAPI_ERROR_UNREACHABLE:
    return SOUP_STATUS_SERVICE_UNAVAILABLE;
  case HOSTAPI_ERROR_TIMEOUT:
    return SOUP_STATUS_GATEWAY_TIMEOUT;
  case HOSTAPI_ERROR_BAD_ANSWER:
    return SOUP_STATUS_BAD_GATEWAY;
  }
  return SOUP_STATUS_BAD_GATEWAY;
}

static void
sealing_key_done(GObject *source, GAsyncResult *result, gpointer data)
{
  SoupServerMessage *msg = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(HostapiSealingKey) key = hostapi_provider_request_finish(result, &error);
  if (key == NULL) {
    respond_error(msg, status_for(error), "%s", error->message);
  } else {
    g_autoptr(JsonBuilder) b = json_builder_new_immutable();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "encrypted_key");
    json_builder_add_string_value(b, key->encrypted_key);
    json_builder_set_member_name(b, "provider_quote");
    json_builder_add_string_value(b, key->provider_quote);
    json_builder_end_object(b);
    g_autoptr(JsonNode) root = json_builder_get_root(b);
    respond_node(msg, SOUP_STATUS_OK, root);
  }
  soup_server_message_unpause(msg);
  g_object_unref(msg);
}

static void
get_sealing_key(HostapiRoutes *routes, SoupServerMessage *msg, JsonObject *body)
{
  const char *hex = lcvm_json_string_member(body, "quote");
  if (hex == NULL) {
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "\"quote\" must be a hex string");
    return;
  }
  g_autoptr(GBytes) quote = hex_decode(hex);
  if (quote == NULL) {
    respond_error(msg, SOUP_STATUS_BAD_REQUEST,
                  "\"quote\" must be non-empty hex with an even number of digits, at most %u "
                  "bytes",
                  HOSTAPI_MAX_QUOTE);
    return;
  }
  soup_server_message_pause(msg);
  hostapi_provider_request_async(routes->provider, quote, routes->provider_timeout_s,
                                 sealing_key_done, g_object_ref(msg));
}

/* ---- Notify ---- */

/* Appends one {"time_us", "event", "payload"} JSON line to the event file. */
static gboolean
hostapi_events_append(int fd, const char *event, const char *payload, GError **error)
{
  g_autoptr(JsonBuilder) b = json_builder_new_immutable();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "time_us");
  json_builder_add_int_value(b, g_get_real_time());
  json_builder_set_member_name(b, "event");
  json_builder_add_string_value(b, event);
  json_builder_set_member_name(b, "payload");
  json_builder_add_string_value(b, payload);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  g_autofree char *json = json_to_string(root, FALSE);
  g_autofree char *line = g_strconcat(json, "\n", NULL);
  gsize len = strlen(line);

  struct stat st;
  if (fstat(fd, &st) < 0) {
    return lcvm_set_errno(error, errno, "event file");
  }
  if ((guint64)st.st_size + len > LCVM_EVENTS_FILE_MAX) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                "the event file is full (%u bytes); later events are dropped",
                LCVM_EVENTS_FILE_MAX);
    return FALSE;
  }
  /* One write on an O_APPEND fd: a line lands whole, after whatever is there. */
  ssize_t n;
  do
    n = write(fd, line, len);
  while (n < 0 && errno == EINTR);
  if (n != (ssize_t)len) {
    return lcvm_set_errno(error, n < 0 ? errno : EIO, "event file");
  }
  return TRUE;
}

static gboolean
is_reported_event(const char *event)
{
  return g_str_equal(event, "boot.progress") || g_str_equal(event, "boot.error") ||
         g_str_equal(event, "shutdown.progress");
}

static void
notify(HostapiRoutes *routes, SoupServerMessage *msg, JsonObject *body)
{
  const char *event = lcvm_json_string_member(body, "event");
  /* pRPC's JSON omits a default (empty) string, so a missing payload is "". */
  const char *payload =
      json_object_has_member(body, "payload") ? lcvm_json_string_member(body, "payload") : "";
  if (event == NULL || payload == NULL) {
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "\"event\" and \"payload\" must be strings");
    return;
  }
  g_autoptr(GError) error = NULL;
  if (g_str_equal(event, INSTANCE_INFO)) {
    if (strlen(payload) > LCVM_INSTANCE_INFO_MAX) {
      respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                    "an instance.info payload is at most %u bytes", LCVM_INSTANCE_INFO_MAX);
      return;
    }
    if (!lcvm_write_file_atomic_at(routes->shared_fd, LCVM_SHARED_INSTANCE_INFO, payload,
                                   strlen(payload), 0644, &error)) {
      respond_error(msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "%s", error->message);
      return;
    }
  } else if (is_reported_event(event)) {
    if (strlen(payload) > HOSTAPI_MAX_EVENT) {
      respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
                    "an event payload is at most %u bytes", HOSTAPI_MAX_EVENT);
      return;
    }
    /* Operators' terminals show it (`lium-cvm status`): no escape sequence gets that far. */
    if (!lcvm_text_is_plain(payload, strlen(payload))) {
      respond_error(msg, SOUP_STATUS_BAD_REQUEST,
                    "an event payload is one line of text without control characters");
      return;
    }
    if (!hostapi_events_append(routes->events_fd, event, payload, &error)) {
      respond_error(msg, SOUP_STATUS_SERVICE_UNAVAILABLE, "%s", error->message);
      return;
    }
  }
  /* Other events are accepted and ignored, as dstack-vmm does (it only logs them). */
  respond_empty(msg);
}

/* ---- Info ---- */

static void
info(HostapiRoutes *routes, SoupServerMessage *msg, JsonObject *body)
{
  g_autoptr(JsonBuilder) b = json_builder_new_immutable();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "name");
  json_builder_add_string_value(b, "lium-cvm");
  json_builder_set_member_name(b, "version");
  json_builder_add_string_value(b, LCVM_VERSION);
  json_builder_end_object(b);
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  respond_node(msg, SOUP_STATUS_OK, root);
}

/* ---- dispatch ---- */

typedef void (*RouteFunc)(HostapiRoutes *routes, SoupServerMessage *msg, JsonObject *body);

static const struct {
  const char *path;
  RouteFunc func;
  gboolean needs_body; /* Info takes Empty: any body, even none */
} route_table[] = {
  { "/api/GetSealingKey", get_sealing_key, TRUE },
  { "/api/Notify", notify, TRUE },
  { "/api/Info", info, FALSE },
};

static void
handle_request(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
               gpointer data)
{
  HostapiRoutes *routes = data;
  const char *q = g_uri_get_query(soup_server_message_get_uri(msg));
  guint i = 0;
  while (i < G_N_ELEMENTS(route_table) && !g_str_equal(route_table[i].path, path))
    i++;
  if (i == G_N_ELEMENTS(route_table) || (q != NULL && !g_str_equal(q, "json"))) {
    respond_error(msg, SOUP_STATUS_NOT_FOUND,
                  "unknown route: the host API serves POST /api/GetSealingKey, /api/Notify and "
                  "/api/Info (optionally with ?json)");
    return;
  }
  if (!g_str_equal(soup_server_message_get_method(msg), SOUP_METHOD_POST)) {
    respond_error(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, "only POST is served");
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Allow", "POST");
    return;
  }
  if (!route_table[i].needs_body) {
    route_table[i].func(routes, msg, NULL);
    return;
  }
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  JsonObject *body = body_object(msg, parser);
  if (body != NULL)
    route_table[i].func(routes, msg, body);
}

/* Runs after the headers, before the body is read: a body that is too large, or of unknown
 * length, is refused without reading it. */
static void
check_body_size(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
                gpointer data)
{
  SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
  SoupEncoding encoding = soup_message_headers_get_encoding(h);
  if (encoding != SOUP_ENCODING_CONTENT_LENGTH && encoding != SOUP_ENCODING_NONE)
    respond_error(msg, SOUP_STATUS_LENGTH_REQUIRED,
                  "send the body with a Content-Length (chunked bodies are not accepted)");
  /* Found by fuzzing: libsoup 3.2 takes "Content-Length: -5" and then warns (a guest could fill
   * the journal with them) when it sizes the body stream. */
  else if (encoding == SOUP_ENCODING_CONTENT_LENGTH &&
           soup_message_headers_get_content_length(h) < 0)
    respond_error(msg, SOUP_STATUS_BAD_REQUEST, "Content-Length must be a number of bytes");
  else if (encoding == SOUP_ENCODING_CONTENT_LENGTH &&
           soup_message_headers_get_content_length(h) > HOSTAPI_MAX_BODY)
    respond_error(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, "a request body is at most %u bytes",
                  HOSTAPI_MAX_BODY);
  else
    return;
  /* libsoup still reads a refused body (unless the client asked Expect: 100-continue) before it
   * answers: let it drop the bytes instead of keeping them. The request deadline bounds it. */
  soup_message_body_set_accumulate(soup_server_message_get_request_body(msg), FALSE);
}

void
hostapi_routes_attach(SoupServer *server, HostapiRoutes *routes)
{
  soup_server_add_early_handler(server, NULL, check_body_size, routes, NULL);
  soup_server_add_handler(server, NULL, handle_request, routes, NULL);
}
