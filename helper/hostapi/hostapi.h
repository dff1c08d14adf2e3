/* SPDX-License-Identifier: MIT */
/* lium-cvm-hostapi, the guest's host-API bridge: the pieces its main program ties together.
 * Everything here serves ONE VM: its guest is hostile, so every input from a connection is
 * size-capped and validated, and nothing here opens a path by name — the helper passes every
 * file and socket as an fd. */
#pragma once
#include <gio/gio.h>
#include <libsoup/soup.h>
#include <sys/types.h>

/* Limits (reference/dstack.md §4.1, §4.2, §4.5). */
#define HOSTAPI_MAX_BODY  (128 * 1024)      /* the legacy host_api.py cap */
#define HOSTAPI_MAX_QUOTE (1024 * 1024)     /* dstack's quote limit */
#define HOSTAPI_MAX_FRAME (8 * 1024 * 1024) /* the key provider's frame limit */
#define HOSTAPI_MAX_EVENT 4096              /* dstack drops larger Notify bodies */

/* ---- hostapi-peer.c ---- */

/* The uid owning the client socket of a TCP connection on this host, found with sock_diag by
 * the connection's 4-tuple (local and remote as this side sees them). */
gboolean hostapi_peer_uid(GSocketAddress *local, GSocketAddress *remote, uid_t *uid,
                          GError **error);

/* ---- hostapi-provider.c ---- */

#define HOSTAPI_ERROR (hostapi_error_quark())
GQuark hostapi_error_quark(void);
typedef enum {
  HOSTAPI_ERROR_UNREACHABLE, /* could not connect or send: 503 */
  HOSTAPI_ERROR_TIMEOUT,     /* no complete answer in time: 504 */
  HOSTAPI_ERROR_BAD_ANSWER,  /* an answer that breaks the protocol: 502 */
} HostapiError;

/* The request frame: u32 big-endian length + {"quote":[n,n,...]}. */
GBytes *hostapi_provider_encode(const guint8 *quote, gsize len);
/* A frame's length header, accepted only in 1..HOSTAPI_MAX_FRAME. */
gboolean hostapi_provider_frame_length(const guint8 header[4], guint32 *len, GError **error);
/* The answer body {"encrypted_key":[…],"provider_quote":[…]} → both as lowercase hex. */
gboolean hostapi_provider_decode(const char *data, gsize len, char **encrypted_key_hex,
                                 char **provider_quote_hex, GError **error);

typedef struct {
  char *encrypted_key;  /* hex */
  char *provider_quote; /* hex */
} HostapiSealingKey;
void hostapi_sealing_key_free(HostapiSealingKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostapiSealingKey, hostapi_sealing_key_free)

/* One request on a new TCP connection to address, all of it within timeout_s seconds. The
 * callback runs in the thread-default main context of the caller. */
void hostapi_provider_request_async(GSocketAddress *address, GBytes *quote, guint timeout_s,
                                    GAsyncReadyCallback callback, gpointer user_data);
HostapiSealingKey *hostapi_provider_request_finish(GAsyncResult *result, GError **error);

/* ---- hostapi-routes.c ---- */

typedef struct {
  GSocketAddress *provider; /* the key provider */
  guint provider_timeout_s;
  int shared_fd; /* the instance's shared/ directory */
  int events_fd; /* the event file (O_APPEND) the helper reads */
} HostapiRoutes;

/* Adds the early body-size check and the routes to server. routes must outlive it. */
void hostapi_routes_attach(SoupServer *server, HostapiRoutes *routes);
