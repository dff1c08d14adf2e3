/* SPDX-License-Identifier: MIT */
/* One structured record per privileged call, allowed or refused: to the journal when one
 * is running, to stderr otherwise. Never logs secrets (arguments are names and enums). */
#pragma once
#include <gio/gio.h>

typedef struct {
  guint32 uid;
  guint32 pid;
  char *bus_name;
} HelperCaller;

/* Looks the caller's uid and pid up from the bus (blocking: call from a worker thread),
 * and attaches it to the invocation for the later records of the same call. */
void helper_caller_resolve(GDBusMethodInvocation *inv);
const HelperCaller *helper_caller_get(GDBusMethodInvocation *inv);

/* result: "ok", "refused: …", "failed: …", "started: /io/lium/…". */
void helper_audit(GDBusMethodInvocation *inv, const char *action, const char *result);
void helper_audit_raw(const HelperCaller *caller, const char *method, const char *object,
                      const char *arguments, const char *action, const char *result);

/* A refusal. The first 4 refusals of the same (uid, method, action, result) within a window of
 * 5 s (from the first) are written at once; more are counted, and at the window's end one
 * record repeats the result with " [N more like it from FIRST to LAST]" (UTC, ISO 8601), naming
 * the latest such caller and arguments. A flood of identical refusals costs 5 records per
 * window. Thread-safe; the window's end runs in the main loop. */
void helper_audit_refusal(GDBusMethodInvocation *inv, const char *action, const char *result);
/* Writes the pending coalesced records now (before the helper exits). */
void helper_audit_flush(void);
