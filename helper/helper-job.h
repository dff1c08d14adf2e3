/* SPDX-License-Identifier: MIT */
/* Jobs: long operations (device binding, GPU mode changes, VM stop) run in a worker thread
 * and are visible on the bus as /io/lium/Cvm1/jobs/N while they run and for a while after,
 * so no call waits past the D-Bus timeout and a client that subscribes late still reads
 * the outcome from the Done/Ok/Result properties. */
#pragma once
#include "helper-daemon.h"

typedef struct _HelperJob HelperJob;

/* Runs in a worker thread. Report steps with helper_job_step(); return FALSE with error set
 * on failure. */
typedef gboolean (*HelperJobFunc)(HelperJob *job, gpointer data, GError **error);

/* Takes the locks (Busy when held), exports the job, starts it and replies to inv with its
 * object path. The call is audited when it starts and when it ends. */
void helper_job_start(HelperDaemon *d, GDBusMethodInvocation *inv, const char *operation,
                      const char *const *locks, HelperJobFunc func, gpointer data,
                      GDestroyNotify destroy);

/* Thread-safe. message is also kept as the job's latest Message. */
void helper_job_step(HelperJob *job, double progress, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
HelperDaemon *helper_job_daemon(HelperJob *job);
/* Thread-safe. One audit record for a step that changes the host (result "step: PATH: text"),
 * with the caller, method and arguments of the call that started the job. */
void helper_job_audit_step(HelperJob *job, const char *text);
