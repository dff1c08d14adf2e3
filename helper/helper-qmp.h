/* SPDX-License-Identifier: MIT */
/* A tiny blocking QMP client for worker threads: connect to a VM's QMP socket (the listening
 * socket the helper created and passed to QEMU), the capabilities handshake, and one command
 * at a time. Every read has a deadline, so a wedged QEMU never blocks a thread forever. The
 * helper is QEMU's only QMP client; QEMU accepts the next one after a disconnect, which is
 * what lets a restarted helper reconnect. Never sends anything a caller wrote. */
#pragma once
#include <glib.h>
#include <json-glib/json-glib.h>

typedef struct _HelperQmp HelperQmp;

/* Connects, reads the greeting and negotiates capabilities within timeout_ms. */
HelperQmp *helper_qmp_connect(const char *socket_path, guint timeout_ms, GError **error);
void helper_qmp_free(HelperQmp *qmp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HelperQmp, helper_qmp_free)

/* Runs command (no arguments) and returns its "return" value; events met on the way are
 * skipped. LCVM_ERROR_FAILED with QEMU's error description, or on timeout/EOF. */
JsonNode *helper_qmp_execute(HelperQmp *qmp, const char *command, GError **error);

/* query-status' "status" ("running", "paused", "prelaunch", …). */
char *helper_qmp_query_status(HelperQmp *qmp, GError **error);

/* ---- the parsing, on its own (unit tests and fuzz/fuzz-qmp.c) ---- */

/* One line from QEMU (as untrusted as its guest): a JSON object, or NULL. */
JsonNode *helper_qmp_parse_line(const char *line);

typedef enum {
  HELPER_QMP_OTHER,  /* an event, or anything else: skipped */
  HELPER_QMP_RETURN, /* *ret holds a copy of "return" */
  HELPER_QMP_ERROR,  /* error holds QEMU's description, escaped and bounded */
} HelperQmpMessage;

/* What message (an object) says about the command in flight; where names the socket. */
HelperQmpMessage helper_qmp_classify(JsonObject *message, const char *where, const char *command,
                                     JsonNode **ret, GError **error);

/* query-status' answer: its "status" string, or NULL. */
const char *helper_qmp_status_of(JsonNode *ret);
