/* SPDX-License-Identifier: MIT */
/* The client of a dstack guest's agent (reference/field-2026.md §3.1–3.2): the helper asks it
 * one thing only, to shut the guest down. Transport: AF_VSOCK to the VM's CID, port 8000 — or,
 * when root configured [testing] guest_agent_socket_dir, the unix socket DIR/CID.sock (the
 * seam the tests serve a fake agent on; a caller never chooses it). Request: what dstack-vmm's
 * own pRPC client sends, `POST /api/Shutdown?json` with the empty message `{}` as its body.
 * The agent registers GET too (Lium's dstack.py sends a bare GET), but POST is the form the
 * agent's own maintainers use and test, and a state-changing GET is the one a future guard
 * (CSRF-style, method filtering) would drop first.
 * The answer comes from the guest, which is hostile to the host: at most
 * HELPER_GUEST_AGENT_MAX_REPLY bytes are read within the deadline and only the status line
 * is parsed. Blocking: worker threads only. */
#pragma once
#include <glib.h>

#include "lcvm-config.h"

#define HELPER_GUEST_AGENT_PORT      8000
#define HELPER_GUEST_AGENT_MAX_REPLY 4096

/* Asks the agent of the guest with vsock cid to shut down; TRUE when it answered 2xx within
 * timeout_ms (connect, send and the status line together). A 2xx means "accepted": the guest
 * powers off in the background, and QEMU exiting is the completion. */
gboolean helper_guest_agent_shutdown(const LcvmConfig *config, guint cid, guint timeout_ms,
                                     GError **error);

/* The status code of an HTTP/1.x reply whose first line buf holds (len bytes, not
 * NUL-terminated, possibly hostile): TRUE with *code 100–599 only for a complete line
 * "HTTP/1.D NNN[ reason]" ending in LF. */
gboolean helper_guest_agent_parse_status(const char *buf, gsize len, guint *code);
