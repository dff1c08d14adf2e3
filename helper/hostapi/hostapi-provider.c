/* SPDX-License-Identifier: MIT */
/* The key provider client (reference/dstack.md §4.5): one new TCP connection per request, u32
 * big-endian length + JSON each way. The provider is root's, but its answer still passes the
 * same bounds as anything else before it reaches the guest. Never a proxy, never a name
 * lookup: the address is numeric and comes from the helper. */
#include "hostapi.h"
#include "lcvm-json-depth.h"
#include <json-glib/json-glib.h>
#include <string.h>

G_DEFINE_QUARK(hostapi - error - quark, hostapi_error)

void
hostapi_sealing_key_free(HostapiSealingKey *key)
{
  if (key == NULL)
    return;
  g_free(key->encrypted_key);
  g_free(key->provider_quote);
  g_free(key);
}

GBytes *
hostapi_provider_encode(const guint8 *quote, gsize len)
{
  GString *s = g_string_sized_new(4 + 12 + len * 4);
  g_string_append_len(s, "\0\0\0\0", 4);
  g_string_append(s, "{\"quote\":[");
  for (gsize i = 0; i < len; i++)
    g_string_append_printf(s, i ? ",%u" : "%u", quote[i]);
  g_string_append(s, "]}");
  guint32 body = (guint32)(s->len - 4);
  guint32 be = GUINT32_TO_BE(body);
  memcpy(s->str, &be, 4);
  gsize total = s->len;
  return g_bytes_new_take(g_string_free(s, FALSE), total);
}

gboolean
hostapi_provider_frame_length(const guint8 header[4], guint32 *len, GError **error)
{
  guint32 be;
  memcpy(&be, header, 4);
  guint32 n = GUINT32_FROM_BE(be);
  if (n == 0 || n > HOSTAPI_MAX_FRAME) {
    g_set_error(error, HOSTAPI_ERROR, HOSTAPI_ERROR_BAD_ANSWER,
                "the key provider announced a %u-byte answer (allowed: 1 to %u bytes)", n,
                HOSTAPI_MAX_FRAME);
    return FALSE;
  }
  *len = n;
  return TRUE;
}

/* A JSON array of numbers 0..255 → lowercase hex; NULL when it is anything else. */
static char *
byte_array_to_hex(JsonObject *obj, const char *member)
{
  JsonNode *node = json_object_get_member(obj, member);
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY(node))
    return NULL;
  JsonArray *array = json_node_get_array(node);
  guint n = json_array_get_length(array);
  if (n == 0)
    return NULL;
  GString *hex = g_string_sized_new(n * 2 + 1);
  for (guint i = 0; i < n; i++) {
    JsonNode *e = json_array_get_element(array, i);
    if (!JSON_NODE_HOLDS_VALUE(e) || json_node_get_value_type(e) != G_TYPE_INT64 ||
        json_node_get_int(e) < 0 || json_node_get_int(e) > 255) {
      g_string_free(hex, TRUE);
      return NULL;
    }
    g_string_append_printf(hex, "%02x", (guint)json_node_get_int(e));
  }
  return g_string_free(hex, FALSE);
}

gboolean
hostapi_provider_decode(const char *data, gsize len, char **encrypted_key_hex,
                        char **provider_quote_hex, GError **error)
{
  g_autoptr(JsonParser) parser = json_parser_new_immutable();
  g_autoptr(GError) parse_error = NULL;
  if (!lcvm_json_load_bounded(parser, data, (gssize)len, &parse_error)) {
    g_set_error(error, HOSTAPI_ERROR, HOSTAPI_ERROR_BAD_ANSWER,
                "the key provider's answer is not JSON: %s", parse_error->message);
    return FALSE;
  }
  JsonNode *root = json_parser_get_root(parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    g_set_error_literal(error, HOSTAPI_ERROR, HOSTAPI_ERROR_BAD_ANSWER,
                        "the key provider's answer is not a JSON object");
    return FALSE;
  }
  JsonObject *obj = json_node_get_object(root);
  g_autofree char *key = byte_array_to_hex(obj, "encrypted_key");
  g_autofree char *quote = byte_array_to_hex(obj, "provider_quote");
  if (key == NULL || quote == NULL) {
    g_set_error_literal(error, HOSTAPI_ERROR, HOSTAPI_ERROR_BAD_ANSWER,
                        "the key provider's answer lacks encrypted_key or provider_quote as "
                        "non-empty arrays of bytes");
    return FALSE;
  }
  *encrypted_key_hex = g_steal_pointer(&key);
  *provider_quote_hex = g_steal_pointer(&quote);
  return TRUE;
}

/* Maps an I/O failure to the bridge's error: a cancelled call is the deadline. */
static void
set_io_error(GError **error, GError *io, HostapiError code, const char *what)
{
  if (g_error_matches(io, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
      g_error_matches(io, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    g_set_error(error, HOSTAPI_ERROR, HOSTAPI_ERROR_TIMEOUT,
                "the key provider did not answer in time (while %s)", what);
  else
    g_set_error(error, HOSTAPI_ERROR, code, "key provider: %s: %s", what, io->message);
}

static gboolean
read_exactly(GInputStream *in, void *buf, gsize len, GCancellable *c, const char *what,
             GError **error)
{
  gsize got = 0;
  g_autoptr(GError) io = NULL;
  if (!g_input_stream_read_all(in, buf, len, &got, c, &io)) {
    set_io_error(error, io, HOSTAPI_ERROR_BAD_ANSWER, what);
    return FALSE;
  }
  if (got < len) {
    g_set_error(error, HOSTAPI_ERROR, HOSTAPI_ERROR_BAD_ANSWER,
                "the key provider closed the connection while %s (%" G_GSIZE_FORMAT
                " of %" G_GSIZE_FORMAT " bytes)",
                what, got, len);
    return FALSE;
  }
  return TRUE;
}

static HostapiSealingKey *
exchange(GSocketAddress *address, GBytes *frame, guint timeout_s, GCancellable *c, GError **error)
{
  g_autoptr(GSocketClient) client = g_socket_client_new();
  g_socket_client_set_enable_proxy(client, FALSE);
  g_socket_client_set_timeout(client, timeout_s);
  g_autoptr(GError) io = NULL;
  g_autoptr(GSocketConnection) conn =
      g_socket_client_connect(client, G_SOCKET_CONNECTABLE(address), c, &io);
  if (conn == NULL) {
    set_io_error(error, io, HOSTAPI_ERROR_UNREACHABLE, "connecting (is it running?)");
    return NULL;
  }
  gsize len = 0;
  const guint8 *data = g_bytes_get_data(frame, &len);
  GOutputStream *out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
  if (!g_output_stream_write_all(out, data, len, NULL, c, &io)) {
    set_io_error(error, io, HOSTAPI_ERROR_UNREACHABLE, "sending the quote");
    return NULL;
  }
  GInputStream *in = g_io_stream_get_input_stream(G_IO_STREAM(conn));
  guint8 header[4];
  guint32 body_len = 0;
  if (!read_exactly(in, header, sizeof header, c, "reading the answer's length", error) ||
      !hostapi_provider_frame_length(header, &body_len, error))
    return NULL;
  g_autofree char *body = g_malloc(body_len);
  if (!read_exactly(in, body, body_len, c, "reading the answer", error))
    return NULL;
  g_autoptr(HostapiSealingKey) key = g_new0(HostapiSealingKey, 1);
  if (!hostapi_provider_decode(body, body_len, &key->encrypted_key, &key->provider_quote, error))
    return NULL;
  return g_steal_pointer(&key);
}

typedef struct {
  GSocketAddress *address;
  GBytes *frame;
  guint timeout_s;
  GSource *deadline;
} Request;

static void
request_free(gpointer p)
{
  Request *r = p;
  g_source_destroy(r->deadline);
  g_source_unref(r->deadline);
  g_object_unref(r->address);
  g_bytes_unref(r->frame);
  g_free(r);
}

static void
request_thread(GTask *task, gpointer source, gpointer data, GCancellable *c)
{
  Request *r = data;
  GError *error = NULL;
  HostapiSealingKey *key = exchange(r->address, r->frame, r->timeout_s, c, &error);
  if (key != NULL)
    g_task_return_pointer(task, key, (GDestroyNotify)hostapi_sealing_key_free);
  else
    g_task_return_error(task, error);
}

/* The deadline holds its own reference to the cancellable, never to the request: it may fire
 * in the main thread while the worker drops the request. */
static gboolean
on_deadline(gpointer data)
{
  g_cancellable_cancel(G_CANCELLABLE(data));
  return G_SOURCE_REMOVE;
}

void
hostapi_provider_request_async(GSocketAddress *address, GBytes *quote, guint timeout_s,
                               GAsyncReadyCallback callback, gpointer user_data)
{
  gsize len = 0;
  const guint8 *q = g_bytes_get_data(quote, &len);
  g_autoptr(GCancellable) cancellable = g_cancellable_new();
  Request *r = g_new0(Request, 1);
  r->address = g_object_ref(address);
  r->frame = hostapi_provider_encode(q, len);
  r->timeout_s = timeout_s;
  r->deadline = g_timeout_source_new_seconds(timeout_s);
  g_source_set_callback(r->deadline, on_deadline, g_object_ref(cancellable), g_object_unref);
  g_source_attach(r->deadline, g_main_context_get_thread_default());

  g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
  g_task_set_check_cancellable(task, FALSE);
  g_task_set_task_data(task, r, request_free);
  g_task_run_in_thread(task, request_thread);
}

HostapiSealingKey *
hostapi_provider_request_finish(GAsyncResult *result, GError **error)
{
  return g_task_propagate_pointer(G_TASK(result), error);
}
